import NNCore
import TensorCore

/// Labels made from images alone, for pretext tasks (DESIGN.md §6): the label is the
/// transformation applied, so no class label is involved.
public enum Pretext {
    /// Every image of `images` [N, C, H, W] rotated by 0°, 90°, 180° and 270° counter-clockwise
    /// (Gidaris et al. 2018): 4N images, the N copies of rotation r at rows r·N..<(r+1)·N, and
    /// their labels r. Square images only: a quarter turn of a non-square image changes its shape.
    public static func rotations(_ images: Tensor) -> (images: Tensor, labels: [Int32]) {
        let n = images.shape[0]
        let parts = (0..<4).map { rotate(images, quarterTurns: $0) }
        return (concat(parts, axis: 0), (0..<4).flatMap { [Int32](repeating: Int32($0), count: n) })
    }

    /// Each image turned by its own random multiple of 90° (ReMixMatch's rotation loss), with the
    /// number of quarter turns as its label; rows keep their order.
    public static func randomRotations(_ images: Tensor, rng: inout RNG) -> (images: Tensor, labels: [Int32]) {
        let n = images.shape[0]
        let turns = (0..<n).map { _ in Int(rng.next() % 4) }
        var rows = [Int](repeating: 0, count: n), parts: [Tensor] = [], start = 0
        for r in 0..<4 {
            let members = (0..<n).filter { turns[$0] == r }
            guard !members.isEmpty else { continue }
            parts.append(rotate(images.gatherRows(members), quarterTurns: r))
            for (k, i) in members.enumerated() { rows[i] = start + k }
            start += members.count
        }
        return (concat(parts, axis: 0).gatherRows(rows), turns.map(Int32.init))
    }

    /// `images` turned counter-clockwise by `quarterTurns` × 90° (on the screen: row 0 at the top).
    public static func rotate(_ images: Tensor, quarterTurns: Int) -> Tensor {
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        // invariant: rotation and ReMixMatch refuse non-square images (`Pretext.rotationProblem`) when they are built
        precondition(h == w, "Pretext.rotate: images must be square, got \(h)x\(w)")
        let turns = ((quarterTurns % 4) + 4) % 4
        if turns == 0 { return images.detached }
        var out = Tensor(zeros: images.shape)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for plane in 0..<(n * c) {
                    let base = plane * h * w
                    for y in 0..<h {
                        for x in 0..<w {
                            // Destination (y, x) reads the source pixel that the turn moves there.
                            let (sy, sx): (Int, Int)
                            switch turns {
                            case 1: (sy, sx) = (x, w - 1 - y)          // 90° counter-clockwise
                            case 2: (sy, sx) = (h - 1 - y, w - 1 - x)  // 180°
                            default: (sy, sx) = (h - 1 - x, y)         // 270°
                            }
                            dst[base + y * w + x] = src[base + sy * w + sx]
                        }
                    }
                }
            }
        }
        return out
    }

    /// Why a dataset cannot be rotated (nil when it can), naming the shape.
    public static func rotationProblem(imageShape: [Int]) -> String? {
        imageShape.count == 3 && imageShape[1] == imageShape[2] ? nil
            : "rotation prediction needs square images; these are \(imageShape.map(String.init).joined(separator: "x"))"
    }

    /// A fixed set of `count` permutations of `tiles` tiles for jigsaw puzzles (Noroozi & Favaro
    /// 2016): chosen greedily, each next one at maximal minimum Hamming distance from those
    /// already chosen (the paper's "maximal" set), from candidates drawn with `rng`.
    public static func tilePermutations(tiles: Int, count: Int, rng: inout RNG, candidates: Int = 1000) -> [[Int]] {
        // invariant: jigsaw's validate() allows grids of 2 to 4 and 2 to 1,000 permutations
        precondition(tiles >= 2 && count >= 1, "Pretext.tilePermutations: needs at least 2 tiles and 1 permutation")
        var chosen: [[Int]] = [Array(0..<tiles)]
        func hamming(_ a: [Int], _ b: [Int]) -> Int { zip(a, b).filter { $0 != $1 }.count }
        while chosen.count < count {
            var best: [Int]?, bestDistance = -1
            for _ in 0..<candidates {
                var p = Array(0..<tiles)
                rng.shuffle(&p)
                let d = chosen.map { hamming($0, p) }.min()!
                if d > bestDistance { (best, bestDistance) = (p, d) }
            }
            guard let best, bestDistance > 0 else { break }
            chosen.append(best)
        }
        return chosen
    }

    /// `images` [N, C, H, W] cut into a grid × grid of tiles, rearranged so that tile position i
    /// holds original tile `permutation[i]` (H and W divisible by grid).
    public static func shuffleTiles(_ images: Tensor, grid: Int, permutation: [Int], gap: Int = 0) -> Tensor {
        shuffleTiles(images, grid: grid, permutations: [[Int]](repeating: permutation, count: images.shape[0]), gap: gap)
    }

    /// Each image with its own permutation of tiles; with `gap`, the `gap` outermost pixels of every
    /// tile set to 0 (the dataset mean), so no tile can be placed by continuing its neighbour's
    /// edges (the gaps between tiles of Noroozi & Favaro 2016).
    public static func shuffleTiles(_ images: Tensor, grid: Int, permutations: [[Int]], gap: Int = 0) -> Tensor {
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        // invariant: jigsaw checks that its grid divides the images' sides (a ConfigError) when it is built
        precondition(h % grid == 0 && w % grid == 0 && permutations.count == n && permutations.allSatisfy { $0.count == grid * grid },
                     "Pretext.shuffleTiles: \(h)x\(w) images do not split into \(grid)x\(grid) tiles")
        let (th, tw) = (h / grid, w / grid)
        var out = Tensor(zeros: images.shape)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for plane in 0..<(n * c) {
                    let base = plane * h * w
                    for (position, tile) in permutations[plane / c].enumerated() {
                        let (py, px) = (position / grid * th, position % grid * tw)
                        let (sy, sx) = (tile / grid * th, tile % grid * tw)
                        for y in gap..<max(gap, th - gap) {
                            for x in gap..<max(gap, tw - gap) { dst[base + (py + y) * w + px + x] = src[base + (sy + y) * w + sx + x] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Jigsaw puzzles (Noroozi & Favaro 2016): each image's tiles shuffled by a permutation drawn
    /// from `permutations`, labelled with its index.
    public static func jigsaw(_ images: Tensor, grid: Int, permutations: [[Int]], gap: Int, rng: inout RNG) -> (images: Tensor, labels: [Int32]) {
        let labels = (0..<images.shape[0]).map { _ in rng.int(permutations.count) }
        return (shuffleTiles(images, grid: grid, permutations: labels.map { permutations[$0] }, gap: gap), labels.map(Int32.init))
    }
}
