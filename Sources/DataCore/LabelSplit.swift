import TensorCore

/// A training part divided for one (dataset, budget, seed): a validation set carved out first
/// (so model selection never looks at the test part, and every budget shares it), the labeled
/// examples the budget grants, and the unlabeled pool (every non-validation example, labels hidden,
/// as FixMatch and its kin use it). Identical for every method at the same (dataset, budget, seed).
public struct LabelSplit: Equatable, Sendable {
    public let labeled: [Int]
    public let unlabeled: [Int]
    public let validation: [Int]
    /// Hash of the dataset, the sorted labeled and validation indices: results with different
    /// split hashes are never compared.
    public let hash: String

    /// Stratified and seeded: `validationPerClass` examples of each class go to validation, then
    /// the budget's count of each class (in a seeded order) are labeled.
    public init(labels: [Int32], classes: Int, budget: LabelBudget, validationPerClass: Int, seed: UInt64,
                datasetHash: String, datasetName: String) throws {
        var byClass = [[Int]](repeating: [], count: classes)
        for (i, y) in labels.enumerated() { byClass[Int(y)].append(i) }
        let smallest = byClass.map(\.count).min() ?? 0
        guard validationPerClass >= 0, validationPerClass < smallest || smallest == 0 else {
            throw DataError("\(datasetName): a validation split of \(validationPerClass) per class leaves nothing to train on (smallest class has \(smallest))")
        }
        try budget.validate(smallestClass: smallest - validationPerClass, dataset: datasetName)
        var validation: [Int] = [], labeled: [Int] = [], unlabeled: [Int] = []
        for (c, members) in byClass.enumerated() {
            // The validation draw depends on the seed only, the labeled draw on the seed too, each
            // class its own stream: the same class gets the same examples whatever else changes.
            var order = members
            var rng = RNG(seed: seed, key: "\(datasetHash)/class-\(c)", stream: "split")
            rng.shuffle(&order)
            validation += order.prefix(validationPerClass)
            let rest = Array(order.dropFirst(validationPerClass))
            unlabeled += rest
            if let n = budget.labelsPerClass(available: rest.count) { labeled += rest.prefix(n) }
        }
        self.labeled = labeled.sorted()
        self.unlabeled = unlabeled.sorted()
        self.validation = validation.sorted()
        var h = ContentHash()
        h.add(datasetHash)
        h.add(self.labeled)
        h.add([-1])
        h.add(self.validation)
        hash = h.hex
    }
}
