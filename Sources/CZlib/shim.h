// zlib from Debian's zlib1g-dev, used to read gzipped IDX files.
#include <zlib.h>
