import CBLAS
import Foundation

/// What OpenBLAS is doing in this process, and the choice of its kernel.
///
/// Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH but does not recognise recent CPUs (for
/// example Sapphire Rapids Xeons) and falls back to its SSE3 "Prescott" kernel, 4-5x slower than
/// the AVX-512 one. OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, so the choice
/// is made by `selectBestKernel(arguments:)` at the top of `main`: if the core in use is weaker
/// than the CPU's features allow, it sets OPENBLAS_CORETYPE and re-executes the process once.
public enum BLASRuntime {
    /// The OpenBLAS core name in use ("Haswell", "SkylakeX", "Zen", "Prescott", ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's build configuration string (version and build options).
    public static var config: String { String(cString: openblas_get_config()) }

    /// OpenBLAS's own thread count (1 once the engine has run a GEMM: see `Parallelism`).
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS's own threading at `n` threads (to time OpenBLAS as others call it).
    public static func withOwnThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        openblas_set_num_threads(Int32(n))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// OpenBLAS x86-64 core names, weakest first, with the CPU flags (from /proc/cpuinfo) each
    /// one needs. Vendors only matter for the AVX2 tier, where OpenBLAS has a Zen kernel.
    static let tiers: [(core: String, flags: [String])] = [
        ("Prescott", ["sse3"]),
        ("Core2", ["ssse3"]),
        ("Nehalem", ["sse4_2"]),
        ("Sandybridge", ["avx"]),
        ("Haswell", ["avx2", "fma"]),
        ("SkylakeX", ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]),
    ]

    /// The tier of a core name. Kernels with the same single-precision GEMM share a tier: Zen
    /// with Haswell (AVX2), CooperLake and SapphireRapids with SkylakeX (they add bf16 routines).
    static func tier(of core: String) -> Int? {
        let aliases = ["zen": "haswell", "cooperlake": "skylakex", "sapphirerapids": "skylakex"]
        let name = aliases[core.lowercased()] ?? core.lowercased()
        return tiers.firstIndex { $0.core.lowercased() == name }
    }

    /// The strongest core the CPU supports, from its feature flags, or nil when they are unknown.
    static func bestCore(flags: Set<String>, vendor: String) -> String? {
        guard let best = tiers.lastIndex(where: { tier in tier.flags.allSatisfy(flags.contains) }) else {
            return nil
        }
        let core = tiers[best].core
        return core == "Haswell" && vendor == "AuthenticAMD" ? "Zen" : core
    }

    /// CPU flags and vendor from /proc/cpuinfo (Linux); empty elsewhere.
    static func cpuFlags() -> (flags: Set<String>, vendor: String, model: String) {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return ([], "", "")
        }
        var flags = Set<String>(), vendor = "", model = ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "flags" where flags.isEmpty: flags = Set(parts[1].split(separator: " ").map(String.init))
            case "vendor_id" where vendor.isEmpty: vendor = parts[1]
            case "model name" where model.isEmpty: model = parts[1]
            default: break
            }
        }
        return (flags, vendor, model)
    }

    /// The CPU model name, for records.
    public static var cpuModel: String { cpuFlags().model }

    /// The core OpenBLAS should use on this CPU, when it is stronger than the one in use; nil
    /// when the choice is already right, the user chose (OPENBLAS_CORETYPE is set), or it is unknown.
    public static func recommendedCore() -> String? {
        let cpu = cpuFlags()
        return recommendation(current: coreName, flags: cpu.flags, vendor: cpu.vendor,
                              userChoice: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"])
    }

    /// The decision itself, apart from the machine it runs on: a stronger core than `current`,
    /// or nil when the user chose one, the current one is as good, or either is unknown.
    static func recommendation(current: String, flags: Set<String>, vendor: String, userChoice: String?) -> String? {
        if userChoice != nil { return nil }
        guard let best = bestCore(flags: flags, vendor: vendor), let bestTier = tier(of: best),
              let currentTier = tier(of: current) else { return nil }
        return currentTier < bestTier ? best : nil
    }

    /// Makes OpenBLAS use the best kernel for this CPU: if `recommendedCore()` names one, sets
    /// OPENBLAS_CORETYPE and replaces the process with itself (once; a marker variable stops a
    /// loop if OpenBLAS ignores the setting). Returns normally when nothing needs to change.
    public static func selectBestKernel(arguments: [String]) {
        let marker = "BENCHBENCH_BLAS_REEXEC"
        guard ProcessInfo.processInfo.environment[marker] == nil, let core = recommendedCore() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(marker, "1", 1)
        var cargs = arguments.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv only returns on failure: carry on with the kernel we have.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
