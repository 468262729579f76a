/// How long something took or will take, as people read it ("4 min 12 s"): one wording for
/// progress lines, plans and reports.
public enum Durations {
    public static func text(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600) h \(s % 3600 / 60) min" : s >= 60 ? "\(s / 60) min \(s % 60) s" : "\(s) s"
    }
}
