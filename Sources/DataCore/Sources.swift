import Foundation

/// Where datasets come from: an IDX file set anywhere, or Fashion-MNIST where Debian installs it.
public enum DatasetSource {
    /// The Fashion-MNIST class names, in label order.
    public static let fashionMNISTClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// Folders searched for Fashion-MNIST: `dataDir` alone when given (the folder itself or its
    /// `fashion-mnist/` subfolder); otherwise $BENCHBENCH_DATA likewise, then Debian's
    /// dataset-fashion-mnist location.
    public static func fashionMNISTFolders(dataDir: String?) -> [String] {
        if let dataDir { return [dataDir, dataDir + "/fashion-mnist"] }
        var folders: [String] = []
        if let env = ProcessInfo.processInfo.environment["BENCHBENCH_DATA"], !env.isEmpty { folders += [env, env + "/fashion-mnist"] }
        folders.append("/usr/share/datasets/fashion-mnist")
        return folders
    }

    /// Loads Fashion-MNIST (60,000 + 10,000 images, 28 x 28, 10 classes).
    public static func fashionMNIST(dataDir: String? = nil, classSplit: ClassSplit? = nil) throws -> Dataset {
        let stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        let folders = fashionMNISTFolders(dataDir: dataDir)
        for folder in folders {
            let files = stems.map { stem in [folder + "/" + stem + ".gz", folder + "/" + stem].first { FileManager.default.fileExists(atPath: $0) } }
            if files.allSatisfy({ $0 != nil }) {
                let f = files.map { $0! }
                return try idx(name: "fashion-mnist", trainImages: f[0], trainLabels: f[1], testImages: f[2], testLabels: f[3],
                               classNames: fashionMNISTClasses, allowsHorizontalFlip: true, classSplit: classSplit)
            }
        }
        throw DataError("fashion-mnist: not found in \(folders.joined(separator: ", ")); install it with "
                        + "'apt-get install dataset-fashion-mnist' (or 'make deps'), or pass --data-dir / set BENCHBENCH_DATA "
                        + "to a folder holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    }

    /// Loads any IDX dataset from four files (gzipped or not).
    public static func idx(name: String, trainImages: String, trainLabels: String, testImages: String, testLabels: String,
                           classNames: [String]? = nil, allowsHorizontalFlip: Bool = false, classSplit: ClassSplit? = nil) throws -> Dataset {
        // The four files are independent: read and inflate them concurrently.
        let paths = [trainImages, trainLabels, testImages, testLabels]
        var arrays = [Result<IDXArray, Error>?](repeating: nil, count: 4)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let r = Result { try IDX.read(paths[i]) }
            lock.lock(); arrays[i] = r; lock.unlock()
        }
        let a = try arrays.map { try $0!.get() }
        // Scores on the training images say nothing about generalisation.
        guard a[0].contentHash != a[2].contentHash else {
            throw DataError("\(testImages): the test images are the training images (\(trainImages), byte for byte); a test split must be held out")
        }
        return try Dataset.fromRaw(name: name, train: a[0], trainLabels: a[1], test: a[2], testLabels: a[3],
                                   classNames: classNames, allowsHorizontalFlip: allowsHorizontalFlip, classSplit: classSplit,
                                   sources: (trainImages, trainLabels, testImages, testLabels))
    }
}
