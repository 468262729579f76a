import Foundation
import Testing
@testable import Methods

@Suite struct RegistryTests {
    /// Every type declared as a `Method` under Sources/Methods is registered, once, with a unique id.
    @Test func everyMethodTypeIsRegisteredOnce() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources/Methods")
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?.allObjects as? [URL])
        let declaration = try NSRegularExpression(pattern: #"(?:enum|struct|final class|class)\s+(\w+)\s*:\s*Method\b"#)
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

    @Test func overridesAreCheckedByKeyAndType() throws {
        let m = try #require(MethodRegistry.method("supervised"))
        let r = try m.resolve(budget: .all, classes: 10, overrides: ["steps": 12, "learningRate": 0.5, "hidden": [32, 16]])
        let object = try JSONSerialization.jsonObject(with: Data(r.json.utf8)) as! [String: Any]
        #expect(object["steps"] as? Int == 12 && object["hidden"] as? [Int] == [32, 16])
        #expect(r.workload.steps == 12)
        // Canonical JSON: the same config always has the same text and hash.
        #expect(try m.resolve(budget: .all, classes: 10, overrides: ["hidden": [32, 16], "learningRate": 0.5, "steps": 12]) == r)
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["stpes": 3]) } throws: { ($0 as? ConfigError)?.key == "stpes" }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["steps": "many"]) } throws: {
            ($0 as? ConfigError)?.key == "steps" && "\($0)".contains("expected a whole number")
        }
        #expect { try m.resolve(budget: .all, classes: 10, overrides: ["steps": 0]) } throws: { "\($0)".contains("at least 1") }
    }
}
