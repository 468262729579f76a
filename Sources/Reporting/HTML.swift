import Foundation

/// A typed HTML builder: text and attribute values are always escaped; the only unescaped
/// content is SVG rendered by gnuplot, and that only through `SVGInline`, which strips scripts,
/// external references and namespace URLs first.
public indirect enum HTML: Sendable {
    case element(String, attributes: [(String, String)], children: [HTML])
    case text(String)
    case svg(SVGInline)

    public static func el(_ name: String, _ attributes: [(String, String)] = [], _ children: [HTML] = []) -> HTML {
        .element(name, attributes: attributes, children: children)
    }

    public static func el(_ name: String, _ attributes: [(String, String)] = [], text: String) -> HTML {
        .element(name, attributes: attributes, children: [.text(text)])
    }

    static let voidElements: Set<String> = ["meta", "br", "hr"]

    public func render(into out: inout String) {
        switch self {
        case .text(let s): out += HTML.escape(s)
        case .svg(let svg): out += svg.markup
        case .element(let name, let attributes, let children):
            out += "<\(name)"
            for (k, v) in attributes { out += " \(k)=\"\(HTML.escape(v))\"" }
            if HTML.voidElements.contains(name) { out += "/>"; return }
            out += ">"
            for c in children { c.render(into: &out) }
            out += "</\(name)>"
        }
    }

    /// Escapes the five characters that can change markup's meaning.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}

/// An SVG file made fit to sit inside the page: the XML prolog and doctype dropped, namespace
/// declarations removed (inline SVG needs none, and the page must name no URL), `xlink:href`
/// turned into `href`, ids prefixed so several figures' ids do not collide, and any script or
/// external reference refused.
public struct SVGInline: Sendable {
    public let markup: String

    public init?(_ svg: String, idPrefix: String) {
        guard let start = svg.range(of: "<svg") else { return nil }
        var s = String(svg[start.lowerBound...])
        for pattern in [#"\s+xmlns(:\w+)?="[^"]*""#, #"<script[\s\S]*?</script>"#, #"\s+on\w+="[^"]*""#] {
            s = s.replacingOccurrences(of: pattern, with: "", options: .regularExpression)
        }
        s = s.replacingOccurrences(of: "xlink:href", with: "href")
        s = s.replacingOccurrences(of: #"id=(['"])"#, with: "id=$1\(idPrefix)-", options: .regularExpression)
        s = s.replacingOccurrences(of: #"href=(['"])#"#, with: "href=$1#\(idPrefix)-", options: .regularExpression)
        s = s.replacingOccurrences(of: #"url\(#"#, with: "url(#\(idPrefix)-", options: .regularExpression)
        // Only in-document references may remain.
        guard s.range(of: #"(href|src)=['"][^#]"#, options: .regularExpression) == nil, !s.contains("://") else { return nil }
        markup = s
    }
}
