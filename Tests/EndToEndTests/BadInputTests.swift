import Foundation
@testable import ResultsStore
import Testing

/// Every kind of bad input a user can give, as one table: each case is one line on standard
/// error naming the file, key or value, a documented non-zero exit code, no trap or backtrace,
/// and the database exactly as it was.
@Suite(.serialized) struct BadInputTests {
    /// A case: what to set up in a fresh folder (returning the command line), the exit code and
    /// a piece of the one-line message.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var code: Int32
        var message: String
        /// `ulimit -f` for the command (a disk that fills up).
        var fileSizeLimitKB: Int? = nil
        /// The command may add a run of its own (it started one before the disk filled); what was
        /// stored before must still be there.
        var keepsOldRunsOnly = false
        var setup: @Sendable (Folder) throws -> [String]
        var testDescription: String { name }
    }

    /// A fresh folder with a results database holding one finished run.
    struct Folder {
        let path: String
        var db: String { path + "/benchbench.sqlite" }

        init() throws {
            path = URL(fileURLWithPath: temporaryPath("x")).deletingLastPathComponent().path
            let store = try ResultsStore(path: db)
            let machine = try store.machineID(MachineRecord(hostname: "h", cpu: "c", cores: 2, os: "o", swift: "s", blas: "b", blasCore: "k"))
            let run = try store.startRun(RunRecord(suite: "smoke", suiteSha: "s", commit: "0123456789abcdef0123456789abcdef01234567", branch: "main",
                                                   dirty: false, machineId: machine, argv: "benchbench suite smoke", startedAt: Date()))
            try store.finishRun(run, status: RunStatus.done)
            // A second run whose commit shares the prefix "01234567" (an ambiguous prefix).
            let other = try store.startRun(RunRecord(suite: "smoke", suiteSha: "s", commit: "0123456799999999999999999999999999999999", branch: "main",
                                                     dirty: false, machineId: machine, argv: "benchbench suite smoke", startedAt: Date()))
            try store.finishRun(other, status: RunStatus.done)
        }

        func write(_ name: String, _ text: String) throws -> String {
            let p = path + "/" + name
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }

        func write(_ name: String, bytes: [UInt8]) throws -> String {
            let p = path + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }

        /// gzip of a file (the command-line tool), returning the .gz path.
        func gzip(_ file: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["gzip", "-kf", file]
            try process.run()
            process.waitUntilExit()
            return file + ".gz"
        }

        /// An IDX set: `n` train and `n` test images of `h` x `w` bytes with labels cycling over
        /// `classes`; returns the four paths. Edits change one file's bytes after it is made.
        func idxSet(n: Int = 20, h: Int = 28, w: Int = 28, classes: Int = 4, testSeed: UInt8 = 1,
                    edit: (inout [[UInt8]]) -> Void = { _ in }) throws -> [String] {
            func header(_ type: UInt8, _ dims: [Int]) -> [UInt8] {
                [0, 0, type, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8((d >> (8 * (3 - $0))) & 0xFF) } }
            }
            let images = { (seed: UInt8) in header(8, [n, h, w]) + (0..<(n * h * w)).map { UInt8(truncatingIfNeeded: $0 * 7 + Int(seed)) } }
            let labels = header(8, [n]) + (0..<n).map { UInt8($0 % classes) }
            var files = [images(0), labels, images(testSeed), labels]
            edit(&files)
            return try zip(["train-images", "train-labels", "test-images", "test-labels"], files).map { try write($0, bytes: $1) }
        }

        /// The runs and trials stored, to check a failed command changed nothing.
        func contents() throws -> String {
            let store = try ResultsStore(path: db)
            return try store.runs().map { "\($0.id!):\($0.status):\(try store.trials(run: $0.id!).count)" }.joined(separator: ",")
        }
    }

    static func idxArgs(_ files: [String], _ extra: [String] = []) -> [String] {
        ["data", "inspect", "idx", "--idx-files", files.joined(separator: ",")] + extra
    }

    static func suite(_ f: Folder, _ text: String) throws -> [String] {
        ["suite", try f.write("s.yaml", text), "--dry-run", "--db", f.db]
    }

    /// A suite training conv4 on IDX images of h x w.
    static func conv4Suite(_ f: Folder, h: Int, w: Int) throws -> [String] {
        let files = try f.idxSet(h: h, w: w).map { URL(fileURLWithPath: $0).lastPathComponent }
        return try suite(f, """
            datasets: [{name: idx, files: [\(files.joined(separator: ", "))]}]
            seeds: [0]
            budgets: [2]
            methods:
              supervised: {backbone: {name: conv4}}
            """)
    }

    static let minimal = """
        datasets: [glyphs]
        seeds: [0]
        budgets: [5]
        methods:
          supervised:

        """

    static func edit(_ of: String, _ with: String) -> String { minimal.replacingOccurrences(of: of, with: with) }

    static let cases: [Case] = [
        // Suite files (exit 65, file:line:column: key: message).
        Case(name: "empty suite file", code: 65, message: "s.yaml: the file is empty") { try suite($0, "") },
        Case(name: "suite file not YAML", code: 65, message: "s.yaml:2:1: not valid YAML") { try suite($0, "a: [b\n") },
        Case(name: "suite value of the wrong type", code: 65, message: "s.yaml:2:9: seeds: expected a whole number, got 'zero'") {
            try suite($0, edit("[0]", "[zero]"))
        },
        Case(name: "unknown top-level key", code: 65, message: "s.yaml:1:1: seed: unknown key; expected one of") { try suite($0, "seed: [0]\n" + minimal) },
        Case(name: "unknown method", code: 65, message: "s.yaml:5:3: methods.mixmatcher: unknown method 'mixmatcher'") {
            try suite($0, edit("supervised:", "mixmatcher:"))
        },
        Case(name: "unknown dataset", code: 65, message: "s.yaml:1:12: datasets: unknown dataset 'cifar10'") { try suite($0, edit("[glyphs]", "[cifar10]")) },
        Case(name: "unknown protocol", code: 65, message: "protocols: unknown protocol 'probe'") {
            try suite($0, edit("seeds: [0]", "seeds: [0]\nprotocols: [probe]"))
        },
        Case(name: "unknown method setting", code: 65, message: "methods.supervised.stepz: not a setting of supervised") {
            try suite($0, edit("supervised:", "supervised: {stepz: 3}"))
        },
        Case(name: "budget zero", code: 65, message: "s.yaml:3:11: budgets: label budget '0': zero labels per class; use 'none'") { try suite($0, edit("[5]", "[0]")) },
        Case(name: "negative budget", code: 65, message: "s.yaml:3:11: budgets: label budget '-5': negative labels per class") { try suite($0, edit("[5]", "[-5]")) },
        Case(name: "budget above a class", code: 65, message: "budgets: 25 labels per class is more than dataset 'glyphs' has") {
            try suite($0, edit("[5]", "[25]"))
        },
        Case(name: "way above the novel classes", code: 65, message: "5-way episodes need 5 novel classes; the class split has 4") {
            try suite($0, edit("[glyphs]", "[{name: glyphs, classes: 10, split: [4, 2, 4]}]"))
        },
        Case(name: "shot above a class", code: 65, message: "episodes of 30 shots and 15 queries need 45 images of each novel class") {
            try suite($0, edit("seeds: [0]", "seeds: [0]\nepisodes: {way: 5, shots: [30], query: 15}"))
        },
        Case(name: "method listed twice", code: 65, message: "s.yaml: not valid YAML: expected all keys to be unique but found the following duplicated key(s): 'supervised'") {
            try suite($0, minimal + "  supervised: {batchSize: 8}\n")
        },
        Case(name: "absurd step count", code: 65, message: "methods.supervised.training.steps: 100000000000 steps is more than 10000000") {
            try suite($0, edit("supervised:", "supervised: {training: {steps: 100000000000}}"))
        },
        Case(name: "zero steps", code: 65, message: "methods.supervised.training.steps: must be at least 1") {
            try suite($0, edit("supervised:", "supervised: {training: {steps: 0}}"))
        },
        Case(name: "negative threshold", code: 65, message: "thresholds.accuracy: a threshold must be a number >= 0") {
            try suite($0, edit("seeds: [0]", "seeds: [0]\nthresholds: {accuracy: -1}"))
        },
        Case(name: "a 100 MB suite file", code: 65, message: "s.yaml: is 104857600 bytes; a suite file is at most 1048576 bytes") { f in
            let p = f.path + "/s.yaml"
            FileManager.default.createFile(atPath: p, contents: nil)
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
            try h.truncate(atOffset: 100 << 20)
            try h.close()
            return ["suite", p, "--dry-run", "--db", f.db]
        },
        Case(name: "a suite that does not exist", code: 64, message: "no suite 'nope'") { ["suite", "nope", "--db", $0.db] },
        // Shapes: a backbone that cannot take the images, refused when the plan is made.
        Case(name: "conv4 on 8x8 images", code: 65, message: "conv4 cannot take 1x8x8 inputs") { try conv4Suite($0, h: 8, w: 8) },
        Case(name: "conv4 on 1x8 signals", code: 65, message: "conv4 cannot take 1x1x8 inputs") { try conv4Suite($0, h: 1, w: 8) },
        // Data files (exit 65, the file named).
        Case(name: "missing data file", code: 65, message: "/nothere: no such readable file") { f in
            var files = try f.idxSet()
            files[1] = f.path + "/nothere"
            return idxArgs(files)
        },
        Case(name: "empty data file", code: 65, message: "train-labels: 0 bytes is too short for an IDX header") { f in
            idxArgs(try f.idxSet { $0[1] = [] })
        },
        Case(name: "truncated data file", code: 65, message: "train-images: header claims 20x28x28 ubyte (15696 bytes) but a file of 15000 bytes cannot hold that much") { f in
            idxArgs(try f.idxSet { $0[0] = Array($0[0].prefix(15000)) })
        },
        Case(name: "trailing data", code: 65, message: "train-labels: header says 20 ubyte (28 bytes with the header) but the file has 29 or more bytes (trailing data)") { f in
            idxArgs(try f.idxSet { $0[1].append(9) })
        },
        Case(name: "wrong magic", code: 65, message: "train-images: not an IDX file (magic starts 50 4B, expected 00 00)") { f in
            idxArgs(try f.idxSet { $0[0][0] = 0x50; $0[0][1] = 0x4B; $0[0][2] = 3; $0[0][3] = 4 })
        },
        Case(name: "unknown element type", code: 65, message: "train-images: unknown IDX element type 07") { f in
            idxArgs(try f.idxSet { $0[0][2] = 7 })
        },
        Case(name: "a header that claims 2^31 items", code: 65, message: "test-labels: header claims 2147483648 values, more than the 2147483647 one file may hold") { f in
            idxArgs(try f.idxSet { $0[3] = [0, 0, 8, 1, 0x80, 0, 0, 0] })
        },
        Case(name: "a header far larger than the file", code: 65, message: "test-labels: header claims 1000000000 ubyte (1000000008 bytes) but a file of 8 bytes cannot hold that much") { f in
            idxArgs(try f.idxSet { $0[3] = [0, 0, 8, 1, 0x3B, 0x9A, 0xCA, 0x00] })
        },
        Case(name: "a header whose extents overflow", code: 65, message: "train-images: header claims 4294967295x4294967295x4294967295 values") { f in
            idxArgs(try f.idxSet { $0[0] = [0, 0, 8, 3] + [UInt8](repeating: 0xFF, count: 12) })
        },
        Case(name: "image and label counts differ", code: 65, message: "train-labels: 19 labels, but") { f in
            idxArgs(try f.idxSet { $0[1] = [0, 0, 8, 1, 0, 0, 0, 19] + (0..<19).map { UInt8($0 % 4) } })
        },
        Case(name: "labels outside the class range", code: 65, message: "have no training image; labels must number the classes") { f in
            idxArgs(try f.idxSet { $0[1][8] = 200 })
        },
        Case(name: "test files identical to the training files", code: 65, message: "the test images are the training images") { f in
            idxArgs(try f.idxSet(testSeed: 0))
        },
        Case(name: "bad gzip", code: 65, message: "train-images.gz: gzip stream is truncated or corrupt") { f in
            var files = try f.idxSet()
            let gz = try f.gzip(files[0])
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: gz)))
            bytes = Array(bytes.prefix(bytes.count / 2))
            files[0] = try f.write("train-images.gz", bytes: bytes)
            return idxArgs(files)
        },
        Case(name: "a gzip bomb", code: 65, message: "train-labels.gz: header says 20 ubyte (28 bytes with the header) but the file has 29 or more bytes (trailing data)") { f in
            // 29 bytes of labels followed by 200 MB of zeros: inflation stops a byte past the header's size.
            var files = try f.idxSet()
            let labels = try [UInt8](Data(contentsOf: URL(fileURLWithPath: files[1])))
            let p = files[1]
            FileManager.default.createFile(atPath: p, contents: Data(labels))
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
            try h.truncate(atOffset: UInt64(labels.count + (200 << 20)))
            try h.close()
            files[1] = try f.gzip(p)
            return idxArgs(files)
        },
        Case(name: "a class split that misses classes", code: 65, message: "covers 3 classes but the labels have 4") { f in
            idxArgs(try f.idxSet(), ["--class-split", "1,1,1"])
        },
        Case(name: "wrong number of IDX files", code: 64, message: "dataset 'idx' needs --idx-files") { f in
            ["data", "inspect", "idx", "--idx-files", try f.idxSet().prefix(3).joined(separator: ",")]
        },
        // Databases (exit 74).
        Case(name: "database that is not SQLite", code: 74, message: "cannot open the results database") { f in
            ["runs", "--db", try f.write("notes.sqlite", "these are my notes, not a database\n")]
        },
        Case(name: "database of a newer benchbench", code: 74, message: "written by a newer benchbench") { f in
            let copy = f.path + "/newer.sqlite"
            try FileManager.default.copyItem(atPath: f.db, toPath: copy)
            let store = try ResultsStore(path: copy)
            try store.pool.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: future')") }
            return ["runs", "--db", copy]
        },
        Case(name: "database in a missing folder", code: 74, message: "/no/such/folder/x.sqlite: no results database here") { _ in
            ["runs", "--db", "/no/such/folder/x.sqlite"]
        },
        Case(name: "disk full during a run", code: 74, message: "the results database: disk I/O error", fileSizeLimitKB: 64, keepsOldRunsOnly: true) {
            ["run", "--method", "supervised", "--dataset", "glyphs", "--budget", "5", "--steps", "3", "--backbone", "mlp",
             "--protocols", "native", "--db", $0.db]
        },
        // Command lines.
        Case(name: "unknown run id", code: 4, message: "no run 999") { ["show", "999", "--db", $0.db] },
        Case(name: "commit with no runs", code: 4, message: "no finished run matches 'abcdef12'") { ["compare", "abcdef12", "latest", "--db", $0.db] },
        Case(name: "ambiguous commit prefix", code: 4, message: "commit prefix '01234567' is ambiguous: 0123456789ab, 012345679999") { ["compare", "01234567", "latest", "--db", $0.db] },
        Case(name: "unknown method for run", code: 64, message: "unknown method 'fixmatcher'") {
            ["run", "--method", "fixmatcher", "--dataset", "glyphs", "--budget", "5", "--db", $0.db]
        },
        Case(name: "bad budget for run", code: 64, message: "--budget: label budget 'ten' is not understood") {
            ["run", "--method", "supervised", "--dataset", "glyphs", "--budget", "ten", "--db", $0.db]
        },
        Case(name: "zero steps for run", code: 64, message: "--steps must be at least 1, got 0") {
            ["run", "--method", "supervised", "--dataset", "glyphs", "--budget", "5", "--steps", "0", "--db", $0.db]
        },
        Case(name: "probes with no labels to fit on", code: 64, message: "--budget none grants no labels for knn to fit on: give --eval-budgets") {
            ["run", "--method", "rotation", "--dataset", "fashion-mnist", "--budget", "none", "--protocols", "knn", "--db", $0.db]
        },
        Case(name: "unknown kernels group", code: 64, message: "--only: unknown group 'gemmm'") { ["kernels", "--only", "gemmm", "--db", $0.db] },
        Case(name: "zero threads", code: 64, message: "--threads must be at least 1") { ["kernels", "--threads", "0", "--db", $0.db] },
        Case(name: "calibrate with one run", code: 64, message: "--runs must be at least 2") { ["calibrate", "smoke", "--runs", "1", "--db", $0.db] },
        Case(name: "unwritable report directory", code: 73, message: "cannot write the report there") { f in
            // Under a plain file (permissions would not stop root, which CI runs as).
            ["report", "latest", "--out", try f.write("plain", "x") + "/report", "--db", f.db]
        },
    ]

    @Test func theTableHasFortyCasesOrMore() { #expect(Self.cases.count >= 40) }

    @Test(arguments: cases)
    func badInputGivesOneClearLineAndChangesNothing(_ c: Case) throws {
        let folder = try Folder()
        let before = try folder.contents()
        var args = try c.setup(folder)
        if let limit = c.fileSizeLimitKB {
            let binary = productsDirectory.appendingPathComponent("benchbench").path
            args = ["/bin/sh", "-c", "ulimit -f \(limit); exec \"$0\" \"$@\"", binary] + args
        }
        let r = try c.fileSizeLimitKB == nil ? runBenchbench(args, in: folder.path) : runProgram(args, in: folder.path)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(r.status == c.code, "\(c.name): exit \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains(c.message), "\(c.name): \(r.stderr)")
        #expect(lines.count == 1, "\(c.name): one line expected, got \(lines.count): \(r.stderr)")
        for trap in ["Fatal error", "Illegal instruction", "Segmentation", "backtrace", "Stack dump", "0x0000"] {
            #expect(!r.stderr.contains(trap), "\(c.name): \(r.stderr)")
        }
        let after = try folder.contents()
        if c.keepsOldRunsOnly {
            #expect(after.hasPrefix(before), "\(c.name): what was stored before changed: \(before) -> \(after)")
        } else {
            #expect(after == before, "\(c.name): the database changed")
        }
    }
}
