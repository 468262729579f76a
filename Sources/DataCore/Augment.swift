import Foundation
import TensorCore

/// Per-sample data augmentation, deterministic under the generator it is given.
///
/// - `weak`: translation by up to `maxShift` pixels (pad-and-crop, edges replicated) and, where
///   the dataset allows it, a horizontal flip with probability 1/2 (FixMatch's weak view).
/// - `strong`: RandAugment-style (Cubuk et al. 2020, as FixMatch samples it): the weak view, then
///   `operations` operations drawn from autocontrast, brightness, contrast, equalize, posterize,
///   solarize, rotate, shear, translate, sharpness and identity, each at a random magnitude, then
///   Cutout (a square of up to half the image side set to grey).
///
/// Intensity operations work on pixels in [0, 1]: the dataset's standardisation is undone and
/// redone around them.
public struct Augmenter: Sendable {
    public enum Kind: String, Codable, Sendable { case weak, strong }

    public enum Operation: String, CaseIterable, Sendable {
        case identity, autocontrast, brightness, contrast, equalize, posterize, solarize, rotate, shearX, shearY,
             translateX, translateY, sharpness
    }

    public var kind: Kind
    public var maxShift: Int
    public var operations: Int
    public var cutout: Bool
    public let allowsFlip: Bool
    let mean: [Float], std: [Float]

    public init(kind: Kind, dataset: Dataset, maxShift: Int? = nil, operations: Int = 2, cutout: Bool = true) {
        self.kind = kind
        // 12.5% of the side, as FixMatch translates.
        self.maxShift = maxShift ?? max(1, Int((Double(dataset.imageShape[2]) * 0.125).rounded()))
        self.operations = operations
        self.cutout = cutout
        allowsFlip = dataset.allowsHorizontalFlip
        mean = dataset.channelMean
        std = dataset.channelStd
    }

    /// Augments every image of a batch [N, C, H, W]; image i uses its own generator derived from
    /// `rng` in order, so results do not depend on how the work is split across cores.
    public func apply(_ images: Tensor, rng: inout RNG) -> Tensor {
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        var seeds = (0..<n).map { _ in rng.next() }
        var out = Tensor(zeros: images.shape)
        let plane = h * w
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let (s, d) = (src.baseAddress!, dst.baseAddress!)
                seeds.withUnsafeMutableBufferPointer { seedBuffer in
                    let seedsPointer = seedBuffer.baseAddress!
                    // On the engine's workers, four chunks a thread (images differ in cost: cutout,
                    // the strong operations drawn).
                    let chunks = min(n, Parallelism.threads * 4)
                    Parallelism.perform(chunks) { chunk in
                        var image = [Float](repeating: 0, count: c * plane), scratch = image
                        for i in (n * chunk / chunks)..<(n * (chunk + 1) / chunks) {
                            var r = RNG(seed: seedsPointer[i])
                            // To [0, 1].
                            for ch in 0..<c { for p in 0..<plane { image[ch * plane + p] = s[i * c * plane + ch * plane + p] * std[ch] + mean[ch] } }
                            augment(&image, &scratch, channels: c, height: h, width: w, rng: &r)
                            for ch in 0..<c { for p in 0..<plane { d[i * c * plane + ch * plane + p] = (image[ch * plane + p] - mean[ch]) / std[ch] } }
                        }
                    }
                }
            }
        }
        return out
    }

    func augment(_ x: inout [Float], _ scratch: inout [Float], channels c: Int, height h: Int, width w: Int, rng: inout RNG) {
        // Weak part: flip, then shift with replicated edges.
        let flip = allowsFlip && rng.uniform() < 0.5
        let dx = rng.int(2 * maxShift + 1) - maxShift, dy = rng.int(2 * maxShift + 1) - maxShift
        for ch in 0..<c {
            for y in 0..<h {
                let sy = min(max(y - dy, 0), h - 1)
                for xx in 0..<w {
                    var sx = min(max(xx - dx, 0), w - 1)
                    if flip { sx = w - 1 - sx }
                    scratch[ch * h * w + y * w + xx] = x[ch * h * w + sy * w + sx]
                }
            }
        }
        swap(&x, &scratch)
        guard kind == .strong else { return }
        for _ in 0..<operations {
            let op = Operation.allCases[rng.int(Operation.allCases.count)]
            Augmenter.apply(op, magnitude: rng.uniform(0.05, 1), &x, &scratch, channels: c, height: h, width: w, rng: &rng)
        }
        if cutout {
            let side = max(1, Int(Float(min(h, w)) * 0.5 * rng.uniform(0.5, 1)))
            let cy = rng.int(h), cx = rng.int(w)
            for ch in 0..<c {
                for y in max(0, cy - side / 2)..<min(h, cy + (side + 1) / 2) {
                    for xx in max(0, cx - side / 2)..<min(w, cx + (side + 1) / 2) { x[ch * h * w + y * w + xx] = 0.5 }
                }
            }
        }
        for i in x.indices { x[i] = min(max(x[i], 0), 1) }
    }

    /// One operation at magnitude m in (0, 1] on an image in [0, 1].
    static func apply(_ op: Operation, magnitude m: Float, _ x: inout [Float], _ scratch: inout [Float],
                      channels c: Int, height h: Int, width w: Int, rng: inout RNG) {
        let plane = h * w
        let sign: Float = rng.uniform() < 0.5 ? -1 : 1
        switch op {
        case .identity:
            return
        case .autocontrast:
            for ch in 0..<c {
                let slice = x[(ch * plane)..<((ch + 1) * plane)]
                let lo = slice.min()!, hi = slice.max()!
                guard hi > lo else { continue }
                for p in 0..<plane { x[ch * plane + p] = (x[ch * plane + p] - lo) / (hi - lo) }
            }
        case .brightness:
            let f = 1 + sign * 0.9 * m
            for i in x.indices { x[i] *= f }
        case .contrast:
            let f = 1 + sign * 0.9 * m
            let mean = x.reduce(0, +) / Float(x.count)
            for i in x.indices { x[i] = mean + f * (x[i] - mean) }
        case .equalize:
            for ch in 0..<c {
                var histogram = [Int](repeating: 0, count: 256)
                for p in 0..<plane { histogram[Int(min(max(x[ch * plane + p], 0), 1) * 255)] += 1 }
                var cdf = [Float](repeating: 0, count: 256), running = 0
                for b in 0..<256 { running += histogram[b]; cdf[b] = Float(running) / Float(plane) }
                for p in 0..<plane { x[ch * plane + p] = cdf[Int(min(max(x[ch * plane + p], 0), 1) * 255)] }
            }
        case .posterize:
            let levels = Float(1 << (8 - Int(4 * m)))   // 8 down to 4 bits
            for i in x.indices { x[i] = (x[i] * (levels - 1)).rounded(.down) / (levels - 1) }
        case .solarize:
            let threshold = 1 - m
            for i in x.indices where x[i] >= threshold { x[i] = 1 - x[i] }
        case .rotate:
            affine(&x, &scratch, c, h, w, angle: sign * 30 * Float.pi / 180 * m, shear: (0, 0), shift: (0, 0))
        case .shearX:
            affine(&x, &scratch, c, h, w, angle: 0, shear: (sign * 0.3 * m, 0), shift: (0, 0))
        case .shearY:
            affine(&x, &scratch, c, h, w, angle: 0, shear: (0, sign * 0.3 * m), shift: (0, 0))
        case .translateX:
            affine(&x, &scratch, c, h, w, angle: 0, shear: (0, 0), shift: (sign * 0.3 * m * Float(w), 0))
        case .translateY:
            affine(&x, &scratch, c, h, w, angle: 0, shear: (0, 0), shift: (0, sign * 0.3 * m * Float(h)))
        case .sharpness:
            // Blend towards (or away from) a smoothed copy, as PIL's ImageEnhance.Sharpness does.
            let f = 1 + sign * 0.9 * m
            for ch in 0..<c {
                for y in 0..<h {
                    for xx in 0..<w {
                        let i = ch * plane + y * w + xx
                        guard y > 0, y < h - 1, xx > 0, xx < w - 1 else { scratch[i] = x[i]; continue }
                        var s = 4 * x[i]
                        for (oy, ox) in [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)] {
                            s += x[ch * plane + (y + oy) * w + xx + ox]
                        }
                        scratch[i] = s / 12
                    }
                }
            }
            for i in x.indices { x[i] = scratch[i] + f * (x[i] - scratch[i]) }
        }
    }

    /// Resamples about the centre (bilinear, zero outside): rotation, shear, then shift.
    static func affine(_ x: inout [Float], _ scratch: inout [Float], _ c: Int, _ h: Int, _ w: Int,
                       angle: Float, shear: (Float, Float), shift: (Float, Float)) {
        let (cy, cx) = (Float(h - 1) / 2, Float(w - 1) / 2)
        let (ca, sa) = (cos(angle), sin(angle))
        for y in 0..<h {
            for xx in 0..<w {
                // Inverse map from the output pixel to the source.
                let ox = Float(xx) - cx - shift.0, oy = Float(y) - cy - shift.1
                var sx = ca * ox + sa * oy, sy = -sa * ox + ca * oy
                sx -= shear.0 * sy
                sy -= shear.1 * sx
                sx += cx; sy += cy
                let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                let fx = sx - Float(x0), fy = sy - Float(y0)
                for ch in 0..<c {
                    func at(_ yy: Int, _ xq: Int) -> Float { yy >= 0 && yy < h && xq >= 0 && xq < w ? x[ch * h * w + yy * w + xq] : 0 }
                    scratch[ch * h * w + y * w + xx] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                        + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
                }
            }
        }
        swap(&x, &scratch)
    }
}
