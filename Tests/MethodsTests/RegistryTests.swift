import Foundation
import Testing
import TensorCore
@testable import Methods

@Suite struct RegistryTests {
    /// Every type declared as a `Method` under Sources/Methods is registered, once, with a unique id.
    @Test func everyMethodTypeIsRegisteredOnce() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources/Methods")
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?.allObjects as? [URL])
        let declaration = try NSRegularExpression(pattern: #"(?:enum|struct|final class|class)\s+(\w+)\s*:\s*(?:Step)?Method\b"#)
        var declared: [String] = []
        for file in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in declaration.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                declared.append(String(text[Range(match.range(at: 1), in: text)!]))
            }
        }
        #expect(!declared.isEmpty)
        #expect(Set(declared) == Set(MethodRegistry.all.map(\.typeName)))
        #expect(MethodRegistry.all.count == Set(MethodRegistry.ids).count, "ids are unique")
        for m in MethodRegistry.all {
            #expect(!m.version.isEmpty && !m.summary.isEmpty)
            #expect(!m.configKeys().isEmpty, "\(m.id) has a config a suite can override")
        }
    }

    /// Config hashes are frozen: a trial's config hash is part of its key and of what comparisons
    /// match, so a change of a default or of the canonical JSON must show here (then bump the
    /// method's version).
    @Test func configHashesArePinned() throws {
        let supervised = try #require(MethodRegistry.method("supervised")).resolve(budget: .perClass(10), classes: 10)
        let fixmatch = try #require(MethodRegistry.method("fixmatch")).resolve(budget: .perClass(10), classes: 10, overrides: ["threshold": 0.9])
        #expect([supervised.sha, fixmatch.sha] == ["a0f0c4c3ee0d711a", "90d493c92636e06e"], "\([supervised.sha, fixmatch.sha])")
    }

    /// Settings counted in steps follow an overridden step budget unless given themselves.
    @Test func stepCountedSettingsFollowTheStepBudget() throws {
        let m = try #require(MethodRegistry.method("supervised"))
        func training(_ overrides: [String: Any]) throws -> [String: Any] {
            let json = try m.resolve(budget: .all, classes: 10, overrides: ["training": overrides]).json
            return try #require((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["training"] as? [String: Any])
        }
        // Defaults at all labels: 1,450 steps, warm-up 100, validation every 181.
        let defaults = try training([:])
        #expect(defaults["warmupSteps"] as? Int == 100 && defaults["validateEvery"] as? Int == 181)
        let short = try training(["steps": 5])
        #expect(short["warmupSteps"] as? Int == 1 && short["validateEvery"] as? Int == 1)
        let half = try training(["steps": 725, "warmupSteps": 7])
        #expect(half["warmupSteps"] as? Int == 7 && half["validateEvery"] as? Int == 91 && half["decayEvery"] as? Int == 0)
    }

    @Test func overridesAreCheckedByKeyAndType() throws {
        let m = try #require(MethodRegistry.method("supervised"))
        let r = try m.resolve(budget: .all, classes: 10, overrides: ["training": ["steps": 12, "learningRate": 0.5], "backbone": ["hidden": [32, 16]]])
        let object = try JSONSerialization.jsonObject(with: Data(r.json.utf8)) as! [String: Any]
        #expect((object["training"] as? [String: Any])?["steps"] as? Int == 12)
        #expect((object["backbone"] as? [String: Any])?["hidden"] as? [Int] == [32, 16])
        #expect((object["backbone"] as? [String: Any])?["name"] as? String == "conv4", "nested settings merge, not replace")
        #expect(r.workload.steps == 12)
        // Canonical JSON: the same config always has the same text and hash.
        #expect(try m.resolve(budget: .all, classes: 10, overrides: ["backbone": ["hidden": [32, 16]], "training": ["learningRate": 0.5, "steps": 12]]) == r)
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["stpes": 3]) } throws: { ($0 as? ConfigError)?.key == "stpes" }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["training": ["stpes": 3]]) } throws: { ($0 as? ConfigError)?.key == "training.stpes" }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["training": 3]) } throws: {
            ($0 as? ConfigError)?.key == "training" && "\($0)".contains("mapping")
        }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["training": ["steps": "many"]]) } throws: {
            ($0 as? ConfigError)?.key == "training.steps" && "\($0)".contains("expected a whole number like the default")
        }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["training": ["steps": 0]]) } throws: { "\($0)".contains("at least 1") }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["training": ["optimizer": "adamax"]]) } throws: {
            ($0 as? ConfigError)?.key == "training.optimizer"
        }
    }

    /// conv4 refuses shapes its four poolings cannot take, and says which fit; 1 x W signals fit.
    @Test func backboneChecksImageShapes() throws {
        let conv4 = BackboneSpec()
        #expect { try conv4.check(imageShape: [1, 8, 8]) } throws: { "\($0)".contains("at least 16x16") && "\($0)".contains("1x8x8") }
        try conv4.check(imageShape: [1, 28, 28])
        try conv4.check(imageShape: [1, 1, 40])
        var rng = RNG(seed: 1)
        let (net, features) = try conv4.build(imageShape: [1, 1, 40], rng: &rng)
        #expect(features == 64 * 2)   // 40 -> 20 -> 10 -> 5 -> 2
        #expect(net(Tensor(zeros: [3, 1, 1, 40])).shape == [3, 128])
        try BackboneSpec(name: "mlp", hidden: [8]).check(imageShape: [1, 8, 8])
    }
}
