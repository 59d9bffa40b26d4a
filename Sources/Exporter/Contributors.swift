public import Monitor

/// Adds metric families to every scrape. Other modules (Policy) implement this so the exporter
/// never depends on them.
///
/// `contribute` runs on the scrape path: it must be quick, must not block, and must not await;
/// read state the contributor keeps behind a lock.
public protocol MetricsContributor: Sendable {
    /// Writes whole families: `writer.family(...)` and then its samples.
    /// - Parameters:
    ///   - writer: The scrape being rendered; families are sorted by name afterwards.
    ///   - snapshot: The same snapshot the built-in families render from.
    func contribute(to writer: inout MetricsWriter, snapshot: IndexSnapshot)
}

/// Adds sections (a titled table) to the landing page, such as Policy's reference problems.
public protocol LandingContributor: Sendable {
    /// Same constraints as `MetricsContributor.contribute`: quick, no blocking, no awaiting.
    func landingSections(snapshot: IndexSnapshot) -> [LandingSection]
}

/// One titled table on the landing page. The exporter escapes every string.
public struct LandingSection: Hashable, Sendable {
    public var title: String
    public var columns: [String]
    /// Rows of cells; a row shorter than `columns` is padded with empty cells.
    public var rows: [[String]]
    /// Shown instead of the table when `rows` is empty.
    public var emptyText: String

    public init(title: String, columns: [String], rows: [[String]], emptyText: String = "None.") {
        self.title = title
        self.columns = columns
        self.rows = rows
        self.emptyText = emptyText
    }
}
