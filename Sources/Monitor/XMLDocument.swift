internal import CLibXML2

/// A parsed XML document queried with XPath; the only file that touches libxml2.
///
/// libxml2 keeps global parser state that must be initialised once per process before threads use it.
struct XPathDocument: ~Copyable {
    private let doc: xmlDocPtr
    private let context: xmlXPathContextPtr

    private static let initialised: Void = { xmlInitParser() }()

    /// Parses `text`; returns nil when it is not well-formed XML.
    init?(_ text: String) {
        _ = Self.initialised
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
        let parsed: xmlDocPtr? = text.withCString { ptr in
            xmlReadMemory(ptr, Int32(text.utf8.count), "noname.xml", nil, options)
        }
        guard let parsed else { return nil }
        guard let ctx = xmlXPathNewContext(parsed) else {
            xmlFreeDoc(parsed)
            return nil
        }
        doc = parsed
        context = ctx
    }

    deinit {
        xmlXPathFreeContext(context)
        xmlFreeDoc(doc)
    }

    /// The string value of every node `xpath` selects (attribute value or element text), in document order.
    func strings(_ xpath: String) -> [String] {
        withNodes(xpath, relativeTo: nil) { nodes in nodes.map(Self.content) }
    }

    /// The string value of the first node `xpath` selects, trimmed; nil when nothing matches or it is empty.
    func string(_ xpath: String) -> String? {
        guard let first = strings(xpath).first else { return nil }
        let trimmed = first.trimmingWhitespace()
        return trimmed.isEmpty ? nil : trimmed
    }

    /// Evaluates `each` for every node `xpath` selects; `each` gets a query function relative to that node.
    func map<T>(_ xpath: String, _ each: ((String) -> String?) -> T) -> [T] {
        withNodes(xpath, relativeTo: nil) { nodes in
            nodes.map { node in
                each { relative in
                    self.withNodes(relative, relativeTo: node) { inner in
                        guard let first = inner.first else { return nil }
                        let text = Self.content(first).trimmingWhitespace()
                        return text.isEmpty ? nil : text
                    }
                }
            }
        }
    }

    private func withNodes<T>(_ xpath: String, relativeTo node: xmlNodePtr?, _ body: ([xmlNodePtr]) -> T) -> T {
        let saved = context.pointee.node
        context.pointee.node = node ?? xmlDocGetRootElement(doc)
        defer { context.pointee.node = saved }
        guard let result = xmlXPathEvalExpression(xpath, context) else { return body([]) }
        defer { xmlXPathFreeObject(result) }
        guard let set = result.pointee.nodesetval, set.pointee.nodeNr > 0 else { return body([]) }
        let nodes = (0..<Int(set.pointee.nodeNr)).compactMap { set.pointee.nodeTab[$0] }
        return body(nodes)
    }

    private static func content(_ node: xmlNodePtr) -> String {
        guard let raw = xmlNodeGetContent(node) else { return "" }
        defer { mdevmon_xml_free(raw) }
        return String(cString: raw)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
