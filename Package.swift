// swift-tools-version:6.0
import PackageDescription

// Swift code is compiled for baseline x86-64 so a build runs on any machine; speed comes from
// OpenBLAS (which dispatches on the CPU at run time) and from cache-friendly loops of our own.
// Language mode 5: the engine keeps a little process-wide state (gradient mode, buffer pool,
// profiler) behind its own locks, which Swift 6's checker cannot see.
let optimize: [SwiftSetting] = []

let package = Package(
    name: "benchbench",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "benchbench", targets: ["benchbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Vocabulary", swiftSettings: optimize),
        .target(name: "TensorCore", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimize),
        .target(name: "NNCore", dependencies: ["TensorCore"], swiftSettings: optimize),
        .target(name: "DataCore", dependencies: ["Vocabulary", "TensorCore", "CZlib"], swiftSettings: optimize),
        .target(name: "Methods", dependencies: ["TensorCore", "NNCore", "DataCore"], swiftSettings: optimize),
        .target(name: "Evaluation", dependencies: ["TensorCore", "NNCore", "DataCore", "CKernels"], swiftSettings: optimize),
        .target(name: "ResultsStore", dependencies: [.product(name: "GRDB", package: "GRDB.swift")], swiftSettings: optimize),
        .target(name: "Suite", dependencies: ["TensorCore", "NNCore", "DataCore", "Methods", "Evaluation", "ResultsStore", "Yams"],
                swiftSettings: optimize),
        .target(name: "Comparison", dependencies: ["Vocabulary", "ResultsStore"], swiftSettings: optimize),
        .target(name: "Reporting", dependencies: ["Vocabulary", "ResultsStore", "Comparison"], swiftSettings: optimize),
        .executableTarget(
            name: "benchbench",
            dependencies: [
                "Vocabulary", "TensorCore", "NNCore", "DataCore", "Methods", "Evaluation", "ResultsStore", "Suite", "Comparison", "Reporting", "CBLAS",
                "CKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimize),
        .testTarget(name: "VocabularyTests", dependencies: ["Vocabulary"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "NNCoreTests", dependencies: ["NNCore", "TensorCore"]),
        .testTarget(name: "DataCoreTests", dependencies: ["DataCore", "TensorCore", "CZlib", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "DataCore", "TensorCore", "CKernels"]),
        .testTarget(name: "MethodsTests", dependencies: ["Methods", "DataCore", "NNCore", "TensorCore"]),
        .testTarget(name: "ResultsStoreTests", dependencies: ["ResultsStore", "TestSupport"]),
        .target(name: "TestSupport", dependencies: ["ResultsStore"], path: "Tests/TestSupport"),
        .testTarget(name: "SuiteTests", dependencies: ["Suite", "Methods", "Evaluation", "DataCore", "ResultsStore", "Comparison", "TestSupport"]),
        .testTarget(name: "ComparisonTests", dependencies: ["Comparison", "Reporting", "ResultsStore", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["benchbench", "ResultsStore", "TestSupport"]),
        .testTarget(name: "FuzzTests", dependencies: ["DataCore", "Suite", "TensorCore"]),
    ],
    swiftLanguageModes: [.v5]
)
