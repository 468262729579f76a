/// A problem with input data, worded for the person who supplied it: it names the file (or
/// dataset, or value) and says what was expected.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
