// OpenBLAS from Debian's libopenblas-dev. cblas.h there also declares openblas_get_corename,
// openblas_get_config and openblas_set_num_threads, which the engine uses to report and steer it.
#include <cblas.h>
