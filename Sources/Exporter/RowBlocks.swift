/// The rows of some families (one row per device, or per domain) in exposition order, split into
/// blocks of a few hundred rows. Each block's lines of each family are cached as one `Chunk`, so a
/// changed row re-renders, and re-compresses, only its own block: work per change does not grow
/// with the index.
///
/// Blocks are a sorted run each (like a B-tree's leaves): a row goes into the block whose key range
/// holds it, a block splits in two when it doubles, and an emptied block is dropped.
struct RowBlocks<Key: Comparable & Sendable, Row: Equatable & Sendable>: Sendable {
    /// One family whose samples come from the rows: its header and how a row's lines are written.
    struct Family: Sendable {
        let name: String
        let header: Chunk
        /// Writes the row's sample lines (zero or more) of this family.
        let write: @Sendable (Row, inout MetricsWriter) -> Void

        init(_ name: String, type: MetricsWriter.MetricType, help: String,
             write: @escaping @Sendable (Row, inout MetricsWriter) -> Void) {
            var writer = MetricsWriter(capacity: 256)
            writer.family(name, type: type, help: help)
            self.name = name
            header = Chunk(writer.finish(), reused: true)
            self.write = write
        }
    }

    private struct Block: Sendable {
        var keys: [Key] = []
        var rows: [Row] = []
        /// One chunk per family, or nil when a row changed since they were rendered.
        var chunks: [Chunk]?
        /// Chunks of the last rendering, kept when a re-rendering gives the same text (so their
        /// gzip fragments survive a change that does not show in that family).
        var previous: [Chunk]?
    }

    /// Rows per block after a split; a block holds up to twice as many.
    static var blockSize: Int { 256 }

    let families: [Family]
    private var blocks: [Block] = []

    init(families: [Family]) {
        self.families = families
    }

    var count: Int { blocks.reduce(0) { $0 + $1.keys.count } }

    /// Applies changes as `MetricsCache.changes` lists them: (key, old row, new row or nil).
    mutating func apply(_ changes: [(Key, Row?, Row?)]) {
        guard blocks.isEmpty else {
            for (key, _, row) in changes { set(key, row) }
            return
        }
        // The first rendering: sort once and cut into blocks, rather than insert row by row.
        let rows = changes.compactMap { key, _, row in row.map { (key, $0) } }.sorted { $0.0 < $1.0 }
        blocks = stride(from: 0, to: rows.count, by: Self.blockSize).map { start in
            let slice = rows[start..<min(start + Self.blockSize, rows.count)]
            return Block(keys: slice.map(\.0), rows: slice.map(\.1))
        }
    }

    /// Inserts or replaces the row at `key`, or removes it when `row` is nil.
    mutating func set(_ key: Key, _ row: Row?) {
        guard !blocks.isEmpty else {
            if let row { blocks = [Block(keys: [key], rows: [row])] }
            return
        }
        // The first block whose last key is not below `key`, or the last block.
        var low = 0, high = blocks.count - 1
        while low < high {
            let mid = (low + high) / 2
            if blocks[mid].keys.last! < key { low = mid + 1 } else { high = mid }
        }
        let b = low
        let keys = blocks[b].keys
        var i = 0, j = keys.count
        while i < j {
            let mid = (i + j) / 2
            if keys[mid] < key { i = mid + 1 } else { j = mid }
        }
        let found = i < keys.count && keys[i] == key
        switch (found, row) {
        case (true, let row?):
            guard blocks[b].rows[i] != row else { return }
            blocks[b].rows[i] = row
        case (false, let row?):
            blocks[b].keys.insert(key, at: i)
            blocks[b].rows.insert(row, at: i)
        case (true, nil):
            blocks[b].keys.remove(at: i)
            blocks[b].rows.remove(at: i)
        case (false, nil):
            return
        }
        invalidate(b)
        if blocks[b].keys.isEmpty {
            blocks.remove(at: b)
        } else if blocks[b].keys.count > 2 * Self.blockSize {
            var upper = Block()
            upper.keys = Array(blocks[b].keys[Self.blockSize...])
            upper.rows = Array(blocks[b].rows[Self.blockSize...])
            blocks[b].keys.removeSubrange(Self.blockSize...)
            blocks[b].rows.removeSubrange(Self.blockSize...)
            blocks[b].previous = nil
            blocks.insert(upper, at: b + 1)
        }
    }

    private mutating func invalidate(_ b: Int) {
        if let chunks = blocks[b].chunks { blocks[b].previous = chunks }
        blocks[b].chunks = nil
    }

    /// Each family's header and its blocks' chunks, rendering the blocks that changed.
    mutating func renderedFamilies() -> [(name: String, chunks: [Chunk])] {
        for b in blocks.indices where blocks[b].chunks == nil {
            blocks[b].chunks = render(blocks[b])
            blocks[b].previous = nil
        }
        return families.indices.map { f in
            var chunks = [families[f].header]
            chunks.reserveCapacity(blocks.count + 1)
            for block in blocks { chunks.append(block.chunks![f]) }
            return (families[f].name, chunks)
        }
    }

    private func render(_ block: Block) -> [Chunk] {
        families.indices.map { f in
            let family = families[f]
            var writer = MetricsWriter(samplesOf: family.name, capacity: block.rows.count * 128)
            for row in block.rows { family.write(row, &writer) }
            let text = writer.takeFamilies()[0].text
            if let old = block.previous?[f], old.holds(text) { return old }
            return Chunk(text, reused: true)
        }
    }
}
