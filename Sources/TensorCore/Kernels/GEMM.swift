import CBLAS
import CKernels

extension Kernels {
    /// C[m, n] = alpha * op(A) op(B) + beta * C, row-major, through OpenBLAS. `lda`/`ldb` are the
    /// row lengths of A and B as stored (before the transpose flags apply).
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float = 1, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                     beta: Float = 0, _ c: UnsafeMutablePointer<Float>) {
        let lda = transA ? m : k
        let ldb = transB ? k : n
        let flops = 2 * Double(m) * Double(n) * Double(k)
        // A few rows and columns with a long inner dimension (a first convolution's weight gradient):
        // OpenBLAS reaches 10-15 GFLOP/s there, a blocked loop of ours several times that.
        if alpha == 1 && beta == 0 && !transA && transB && m * n <= 1024 && k >= 8192 {
            KernelProfiler.shared.measure("gemm_nt_long_k", dims(m, n, k), flops: flops) {
                parallelRanges(m, grain: 1) { lo, hi in bb_gemm_nt_long_k(a, b, c, Int32(lo), Int32(hi), Int32(n), k) }
            }
            return
        }
        KernelProfiler.shared.measure(gemmName(transA, transB), dims(m, n, k), flops: flops) {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(n))
        }
    }

    private static func gemmName(_ ta: Bool, _ tb: Bool) -> StaticString {
        switch (ta, tb) {
        case (false, false): return "gemm_nn"
        case (true, false): return "gemm_tn"
        case (false, true): return "gemm_nt"
        case (true, true): return "gemm_tt"
        }
    }

    /// y += alpha * x (BLAS saxpy), the optimizers' update.
    static func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        KernelProfiler.shared.measure("axpy", dims(n), flops: 2 * Double(n), bytes: Double(12 * n)) {
            cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
        }
    }
}
