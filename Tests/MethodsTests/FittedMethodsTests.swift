import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

/// Three well-separated blobs in 2-D, `per` points each, with their blob index.
private func blobs(per: Int = 30, seed: UInt64 = 2) -> (x: Tensor, blob: [Int]) {
    var rng = RNG(seed: seed)
    let centres: [(Float, Float)] = [(0, 0), (10, 0), (0, 10)]
    var values: [Float] = [], blob: [Int] = []
    for (b, c) in centres.enumerated() {
        for _ in 0..<per { values += [c.0 + rng.normal() * 0.5, c.1 + rng.normal() * 0.5]; blob.append(b) }
    }
    return (Tensor(shape: [3 * per, 2], scalars: values), blob)
}

@Suite struct KMeansTests {
    /// Lloyd's iterations from k-means++ seeds find the three blobs: each cluster is one blob.
    @Test func recoversSeparatedBlobs() {
        let (x, blob) = blobs()
        var rng = RNG(seed: 4)
        let fit = KMeans.fit(x, k: 3, iterations: 20, rng: &rng)
        for b in 0..<3 {
            let clusters = Set(zip(fit.clusters, blob).filter { $0.1 == b }.map(\.0))
            #expect(clusters.count == 1, "blob \(b) split over clusters \(clusters)")
        }
        #expect(Set(fit.clusters).count == 3)
        // Inertia never rises along Lloyd's iterations.
        #expect(zip(fit.inertia, fit.inertia.dropFirst()).allSatisfy { $1 <= $0 + 1e-9 })
    }

    /// A centroid far from every point owns no rows; the update gives it a copy of a non-empty
    /// centroid pushed apart from it, so the next assignment gives it rows again.
    @Test func emptyClustersAreReassigned() {
        let (x, _) = blobs()
        var model = KMeans(centroids: Tensor(shape: [3, 2], scalars: [0, 0, 10, 5, 1000, 1000]))
        let before = model.assign(x).clusters
        #expect(!before.contains(2))
        var rng = RNG(seed: 1)
        let empty = model.update(x, clusters: before, rng: &rng)
        #expect(empty == 1)
        let c = model.centroids.scalars
        #expect(abs(c[4]) < 20 && abs(c[5]) < 20, "the empty centroid moved next to a donor: \(c)")
        #expect(model.assign(x).clusters.contains(2))
    }

    /// Distances by ‖x‖² − 2x·c + ‖c‖² equal the direct ones.
    @Test func squaredDistancesMatchDirect() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, -3, 0.5])
        let model = KMeans(centroids: Tensor(shape: [2, 2], scalars: [0, 0, 1, -1]))
        let d = model.squaredDistances(x).scalars
        let expected: [Float] = [5, 9, 9.25, 18.25]
        for (a, b) in zip(d, expected) { #expect(abs(a - b) < 1e-4) }
    }
}

@Suite struct PrincipalComponentsTests {
    /// On data with planted directions of variance 9, 4 and 1 (and 0.01 elsewhere), the fitted
    /// components are those directions, in order, with those variances.
    @Test func findsPlantedDirections() {
        var rng = RNG(seed: 7)
        let d = 12, n = 4000
        // An orthonormal basis from Gram-Schmidt of a random matrix.
        let basis = PrincipalComponents.orthonormalColumns(Tensor.randn([d, d], rng: &rng))
        let scales: [Float] = [3, 2, 1] + [Float](repeating: 0.1, count: d - 3)
        let z = Tensor.randn([n, d], rng: &rng) * Tensor(shape: [1, d], scalars: scales)
        let x = matmul(z, basis, transposeB: true) + 5
        let p = PrincipalComponents.fit(x, components: 3, rng: &rng)
        for (i, v) in [Float(9), 4, 1].enumerated() {
            #expect(abs(p.variances[i] - v) / v < 0.08, "variance \(i): \(p.variances[i]) vs \(v)")
            let planted = (0..<d).map { basis.scalars[$0 * d + i] }, found = (0..<d).map { p.components.scalars[$0 * 3 + i] }
            let cosine = abs(zip(planted, found).reduce(0) { $0 + $1.0 * $1.1 })
            #expect(cosine > 0.99, "component \(i): |cos| = \(cosine)")
        }
        #expect(p.mean.scalars.allSatisfy { abs($0 - 5) < 0.2 })
        // Whitened projections have unit variance per component.
        let w = p.project(x, whiten: true)
        let variance = (w * w).mean(axis: 0).scalars
        #expect(variance.allSatisfy { abs($0 - 1) < 0.05 }, "\(variance)")
    }

    /// Jacobi rotations diagonalise a symmetric matrix: A v = λ v for every pair.
    @Test func jacobiEigenpairs() {
        let a: [Double] = [4, 1, 2,  1, 3, 0.5,  2, 0.5, 1]
        let (values, vectors) = PrincipalComponents.jacobiEigen(a, size: 3)
        for k in 0..<3 {
            for i in 0..<3 {
                let av = (0..<3).reduce(0.0) { $0 + a[i * 3 + $1] * vectors[$1 * 3 + k] }
                #expect(abs(av - values[k] * vectors[i * 3 + k]) < 1e-9)
            }
        }
        #expect(abs(values.reduce(0, +) - 8) < 1e-9, "the trace is kept")
    }
}

@Suite struct GaussianMixtureTests {
    /// The M step's parameters are the responsibility-weighted moments; the E step's posterior of a
    /// point equals Bayes' rule computed directly from the Gaussian densities.
    @Test func emStepsMatchTheirDefinitions() {
        let x = Tensor(shape: [3, 2], scalars: [0, 1, 2, 3, 4, 5])
        let r = Tensor(shape: [3, 2], scalars: [1, 0, 0.5, 0.5, 0, 1])
        let m = GMM.Mixture.fitted(x, responsibilities: r, floor: 0.1)
        // Component 0: weights 1, 0.5, 0 → mean (2/3, 5/3); variance of x₀: (1·0 + 0.5·4)/1.5 − (2/3)² + 0.1.
        #expect(abs(m.means.scalars[0] - 2.0 / 3) < 1e-5 && abs(m.means.scalars[1] - 5.0 / 3) < 1e-5)
        #expect(abs(m.variances.scalars[0] - (2 / 1.5 - 4.0 / 9 + 0.1)) < 1e-5)
        #expect(abs(exp(m.logWeights[0]) - 0.5) < 1e-6)
        func density(_ point: [Float], _ j: Int) -> Double {
            (0..<2).reduce(Double(exp(m.logWeights[j]))) { p, k in
                let (mu, v) = (Double(m.means.scalars[j * 2 + k]), Double(m.variances.scalars[j * 2 + k]))
                return p * Foundation.exp(-(Double(point[k]) - mu) * (Double(point[k]) - mu) / (2 * v)) / (2 * Double.pi * v).squareRoot()
            }
        }
        let point: [Float] = [1.5, 2]
        let (post, logLikelihood) = m.posterior(Tensor(shape: [1, 2], scalars: point))
        let joint = [density(point, 0), density(point, 1)]
        #expect(abs(Double(post.scalars[0]) - joint[0] / (joint[0] + joint[1])) < 1e-5)
        #expect(abs(Double(logLikelihood) - Foundation.log(joint[0] + joint[1]) / 2) < 1e-4)
    }

    /// EM never lowers the likelihood (the monotonicity theorem of Dempster et al.).
    @Test func emRaisesTheLikelihood() {
        let (x, _) = blobs()
        var rng = RNG(seed: 9)
        let start = KMeans.plusPlus(x, k: 3, rng: &rng)
        var m = GMM.Mixture.fitted(x, responsibilities: Tensor.oneHot(start.assign(x).clusters.map(Int32.init), classes: 3), floor: 1e-3)
        var last = -Float.infinity
        for _ in 0..<10 {
            let (r, ll) = m.posterior(x)
            #expect(ll >= last - 1e-4)
            last = ll
            m = GMM.Mixture.fitted(x, responsibilities: r, floor: 1e-3)
        }
    }
}

@Suite struct FittedMethodTests {
    static func input() throws -> (Dataset, TrainingInput) {
        let d = try Fixture.glyphs()
        return (d, try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised))
    }

    /// Each fitted method trains on the unlabeled pool alone, hands over an encoder of the stated
    /// width with no parameters, records its objective per pass, and (k-means, the mixture)
    /// measures itself.
    @Test func pcaKMeansAndMixtureFitAndEncode() throws {
        let (d, input) = try Self.input()
        let images = d.trainImages.gatherRows([0, 1, 2])
        var pca = PCA.Config()
        pca.components = 5
        let p = try PCA.train(input, config: pca)
        #expect(p.featureCount == 5 && p.encoder(images).shape == [3, 5] && p.encoder.namedParameters().isEmpty)
        #expect(p.summary.curves.contains { $0.name == "explained_variance_ratio" && $0.value > 0 && $0.value < 1 })

        var km = KMeansClustering.Config()
        (km.clusters, km.iterations, km.restarts) = (4, 10, 2)
        let k = try KMeansClustering.train(input, config: km)
        #expect(k.featureCount == 8 && k.encoder(images).shape == [3, 8])
        let clusters = k.parts.measures!.clusters!(images)
        #expect(clusters.count == 3 && clusters.allSatisfy { (0..<4).contains($0) } && k.parts.measures!.clusterCount == 4)
        #expect(k.summary.steps == 20 && k.summary.curves.contains { $0.name == "inertia" })

        var g = GMM.Config()
        (g.components, g.iterations) = (3, 5)
        let m = try GMM.train(input, config: g)
        let posterior = m.encoder(images)
        #expect(posterior.shape == [3, 3])
        for i in 0..<3 { #expect(abs((0..<3).reduce(Float(0)) { $0 + posterior.scalars[i * 3 + $1] } - 1) < 1e-4) }
        let values = try m.parts.measures!.values!(images)
        #expect(values.count == 1 && values[0].name == "log_likelihood" && values[0].value.isFinite)
    }

    @Test func settingsAreChecked() {
        var k = KMeansClustering.Config()
        k.clusters = 1
        #expect { try k.validate() } throws: { ($0 as? ConfigError)?.key == "clusters" }
        var g = GMM.Config()
        g.varianceFloor = 0
        #expect { try g.validate() } throws: { ($0 as? ConfigError)?.key == "varianceFloor" }
        var p = PCA.Config()
        p.components = 0
        #expect { try p.validate() } throws: { ($0 as? ConfigError)?.key == "components" }
    }
}
