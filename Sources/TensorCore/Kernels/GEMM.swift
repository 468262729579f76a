import CBLAS
import CKernels
import Foundation

/// Which GEMM the engine runs: benchbench's packed AVX-512 kernel (`gemm.c`) where the CPU has
/// AVX-512, OpenBLAS elsewhere. Debian's OpenBLAS 0.3.21 runs recent CPUs on its Haswell (AVX2)
/// kernel, half of a 512-bit FMA unit's peak. `BENCHBENCH_GEMM=openblas` forces OpenBLAS (to
/// compare the two, or should the kernel misbehave on some CPU); the choice is recorded with
/// every run beside the BLAS core.
public enum GEMMImplementation: String, Sendable {
    case own = "benchbench AVX-512"
    case openBLAS = "OpenBLAS"

    public static let current: GEMMImplementation = {
        if ProcessInfo.processInfo.environment["BENCHBENCH_GEMM"]?.lowercased() == "openblas" { return .openBLAS }
        return bb_sgemm_available() != 0 ? .own : .openBLAS
    }()

    /// Appended to the BLAS core a run records, so `compare` sees a change of GEMM as a change of machine.
    public var provenanceSuffix: String { self == .own ? " + benchbench AVX-512 GEMM" : "" }
}

extension Kernels {
    /// C[m, n] = alpha * op(A) op(B) + beta * C, row-major, through OpenBLAS. `lda`/`ldb` are the
    /// row lengths of A and B as stored (before the transpose flags apply).
    ///
    /// `prologue` and `epilogue`, when given, run on each thread's block of C (rows, columns)
    /// just before and after its GEMM, while that block is in the thread's cache: a bias laid down
    /// for beta = 1 to add to, an activation applied in place.
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float = 1, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                     beta: Float = 0, _ c: UnsafeMutablePointer<Float>,
                     prologue: ((Range<Int>, Range<Int>) -> Void)? = nil,
                     epilogue: ((Range<Int>, Range<Int>) -> Void)? = nil) {
        let lda = transA ? m : k
        let ldb = transB ? k : n
        let flops = 2 * Double(m) * Double(n) * Double(k)
        // A few rows and columns with a long inner dimension (a first convolution's weight gradient):
        // OpenBLAS reaches 10-15 GFLOP/s there, a blocked loop of ours several times that.
        if alpha == 1 && beta == 0 && prologue == nil && epilogue == nil && !transA && transB && m * n <= 1024 && k >= 8192 {
            KernelProfiler.shared.measure("gemm_nt_long_k", dims(m, n, k), flops: flops) {
                parallelRanges(m, grain: 1, perThread: 1) { lo, hi in bb_gemm_nt_long_k(a, b, c, Int32(lo), Int32(hi), Int32(n), k) }
            }
            return
        }
        KernelProfiler.shared.measure(gemmName(transA, transB), dims(m, n, k), flops: flops) {
            // Split C's longer side across the engine's threads, each block one single-threaded
            // GEMM. Row blocks of op(A) start a row (or, transposed, a column) further in; column
            // blocks of op(B) likewise; leading dimensions stay those of the whole.
            let splitRows = m >= n
            parallelRanges(splitRows ? m : n, grain: max(8, (1 << 18) / max(1, (splitRows ? n : m) * k)), perThread: 1) { lo, hi in
                let (rows, cols) = splitRows ? (lo..<hi, 0..<n) : (0..<m, lo..<hi)
                let (r0, c0) = (rows.lowerBound, cols.lowerBound)
                prologue?(rows, cols)
                serialGEMM(transA: transA, transB: transB, m: rows.count, n: cols.count, k: k, alpha: alpha,
                           a + (transA ? r0 : r0 * lda), lda: lda, b + (transB ? c0 * ldb : c0), ldb: ldb, beta: beta, c + r0 * n + c0, ldc: n)
                epilogue?(rows, cols)
            }
        }
    }

    /// C = alpha op(A) op(B) + beta C on the calling thread, by the GEMM `GEMMImplementation`
    /// names (OpenBLAS for products under 16 columns wide): the blocks of `gemm` and the chunks of
    /// a convolution, which are what run in parallel.
    static func serialGEMM(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
                           _ b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        // Fewer than 16 columns fill a third of the packed kernel's 48-wide tile: OpenBLAS did
        // better there (a 10-class head's weight gradient, 256x10x256: 46 against 20 GFLOP/s).
        if GEMMImplementation.current == .own && n >= 16 {
            bb_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, lda, b, ldb, beta, c, ldc)
        } else {
            _ = Parallelism.blasSingleThreaded
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
}
