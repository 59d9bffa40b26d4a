import Foundation

/// The udev rules that decide whether mdevctl's autostart mdevs come up at boot, and whether every
/// program those rules run exists. Stock Debian 12's `60-mdevctl.rules` runs `/usr/sbin/mdevctl`
/// while the package installs `/usr/bin/mdevctl`: udev fails quietly and no autostart mdev starts.
public enum UdevRules {
    /// One program a rule runs (`RUN`, `PROGRAM`, `IMPORT{program}`), or one command of the shell
    /// script such a program is given with `sh -c`.
    public struct Program: Hashable, Sendable {
        /// The rule file as found on the host (the winning copy when `/etc` overrides it).
        public var file: String
        public var line: Int
        /// The command as written (`/usr/sbin/mdevctl`, `logger`).
        public var command: String
        /// The absolute path udev would execute, nil when a bare name is found in no PATH directory.
        public var resolved: String?
        public var exists: Bool
    }

    /// The rule files udev loads, by file name, each from the highest-priority directory holding it;
    /// files masked by an empty file or a `/dev/null` symlink are left out.
    /// - Returns: (file name, host path) pairs sorted by file name (udev's order).
    public static func effectiveFiles(paths: HostPaths) -> [(name: String, path: String)] {
        var chosen: [String: String] = [:]
        var masked: Set<String> = []
        let fm = FileManager.default
        for dir in HostPaths.udevRuleDirectories {
            guard let names = try? fm.contentsOfDirectory(atPath: paths.resolve(dir)) else { continue }
            for name in names where name.hasSuffix(".rules") && chosen[name] == nil && !masked.contains(name) {
                let full = paths.resolve("\(dir)/\(name)")
                if let target = try? fm.destinationOfSymbolicLink(atPath: full), target == "/dev/null" {
                    masked.insert(name)
                    continue
                }
                if let size = (try? fm.attributesOfItem(atPath: full))?[.size] as? NSNumber, size.intValue == 0 {
                    masked.insert(name)
                    continue
                }
                chosen[name] = "\(dir)/\(name)"
            }
        }
        return chosen.sorted { $0.key < $1.key }.map { (name: $0.key, path: $0.value) }
    }

    /// Whether a rule file concerns mdevs (mdevctl's own rules, a vendor's vGPU rules): it mentions
    /// `mdev` anywhere. Only these decide whether autostart mdevs start at boot.
    public static func concernsMdevs(_ text: String) -> Bool {
        text.range(of: "mdev", options: .caseInsensitive) != nil
    }

    /// Every program the rules in `text` run, checked against the host.
    /// - Parameters:
    ///   - file: The rule file's host path, for reporting.
    public static func programs(in text: String, file: String, paths: HostPaths) -> [Program] {
        var out: [Program] = []
        for (lineNumber, line) in logicalLines(text) {
            for value in programValues(line) {
                for command in commands(value) {
                    let resolved = resolve(command, paths: paths)
                    let exists = resolved.map { FileManager.default.isExecutableFile(atPath: paths.resolve($0)) } ?? false
                    out.append(Program(file: file, line: lineNumber, command: command, resolved: resolved, exists: exists))
                }
            }
        }
        return out
    }

    /// Rule lines with `\` continuations joined and comments dropped, numbered by their first line.
    static func logicalLines(_ text: String) -> [(Int, String)] {
        var out: [(Int, String)] = []
        var pending = "", start = 0
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if pending.isEmpty {
                start = i + 1
                if line.trimmingCharacters(in: .whitespaces).hasPrefix("#") { continue }
            }
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line
                continue
            }
            pending += line
            if !pending.trimmingCharacters(in: .whitespaces).isEmpty { out.append((start, pending)) }
            pending = ""
        }
        if !pending.isEmpty { out.append((start, pending)) }
        return out
    }

    /// The values of the keys that run programs: `RUN` and `RUN{program}` (not `RUN{builtin}`),
    /// `PROGRAM`, `IMPORT{program}`.
    static func programValues(_ line: String) -> [String] {
        var out: [String] = []
        var rest = Substring(line)
        while let quote = rest.firstIndex(of: "\"") {
            // The key and operator before the value: `RUN+=`, `PROGRAM==`, `IMPORT{program}=`.
            let head = rest[..<quote].split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            // The value runs to the next unescaped quote.
            var value = "", i = rest.index(after: quote), escaped = false
            while i < rest.endIndex {
                let c = rest[i]
                if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true; value.append(c) } else if c == "\"" { break } else { value.append(c) }
                i = rest.index(after: i)
            }
            rest = i < rest.endIndex ? rest[rest.index(after: i)...] : ""
            let key = head.prefix { $0.isLetter || $0 == "{" || $0 == "}" || $0 == "_" }
            if key == "RUN" || key == "RUN{program}" || key == "PROGRAM" || key == "IMPORT{program}" {
                out.append(value)
            }
        }
        return out
    }

    /// The commands a RUN value executes: its program, and when that is a shell given `-c`, every
    /// command in the script. Commands built from substitutions (`$env{…}`, `%c`) cannot be checked.
    static func commands(_ value: String) -> [String] {
        let argv = ShellWords.split(value)
        guard let program = argv.first else { return [] }
        var out: [String] = []
        if !program.contains("$") && !program.contains("%") { out.append(program) }
        let shells: Set<String> = ["sh", "bash", "dash"]
        if shells.contains(program.split(separator: "/").last.map(String.init) ?? program),
           let c = argv.firstIndex(of: "-c"), c + 1 < argv.count {
            out += ShellWords.commands(inScript: argv[c + 1])
        }
        return out
    }

    /// The path udev executes: absolute as written; a program run directly (not from a shell script)
    /// without a slash is looked up in udev's own directory first, then PATH.
    static func resolve(_ command: String, paths: HostPaths) -> String? {
        if command.hasPrefix("/") { return command }
        let fm = FileManager.default
        for dir in [HostPaths.udevLibexec] + HostPaths.programPath {
            let candidate = "\(dir)/\(command)"
            if fm.isExecutableFile(atPath: paths.resolve(candidate)) { return candidate }
        }
        return nil
    }

    /// The commands a `sh -c` script runs (first word of each simple command; builtins, assignments,
    /// redirections and substitutions left out).
    public static func shellCommands(_ script: String) -> [String] { ShellWords.commands(inScript: script) }

    /// Where an executable named like `path`'s last component exists in udev's PATH, if anywhere:
    /// the target of the fix (`ln -s /usr/bin/mdevctl /usr/sbin/mdevctl`).
    public static func sameNamedExecutable(_ path: String, paths: HostPaths) -> String? {
        guard let name = path.split(separator: "/").last else { return nil }
        return HostPaths.programPath.map { "\($0)/\(name)" }
            .first { $0 != path && FileManager.default.isExecutableFile(atPath: paths.resolve($0)) }
    }
}

/// Just enough of the POSIX shell grammar to find the commands in a udev rule's `sh -c` script.
enum ShellWords {
    /// Splits into words, honouring single and double quotes and backslashes.
    static func split(_ text: String) -> [String] {
        tokens(text).compactMap { if case .word(let w) = $0 { w } else { nil } }
    }

    enum Token: Hashable { case word(String), separator }

    /// Words and command separators (`|`, `||`, `&`, `&&`, `;`, newline, `{`, `}`, `(`, `)`, `$(`, backquote).
    static func tokens(_ text: String) -> [Token] {
        var out: [Token] = []
        var word = "", inWord = false
        var quote: Character?
        var escaped = false
        func flush() {
            if inWord { out.append(.word(word)) }
            word = ""
            inWord = false
        }
        var chars = Array(text)
        chars.append(" ")
        var i = 0
        while i < chars.count {
            let c = chars[i]
            defer { i += 1 }
            if escaped { word.append(c); inWord = true; escaped = false; continue }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { escaped = true } else { word.append(c) }
                continue
            }
            switch c {
            case "\\": escaped = true
            case "'", "\"": quote = c; inWord = true
            case " ", "\t": flush()
            case "|", "&", ";", "\n", "(", ")", "`":
                // `2>&3` and `>&2` are redirections, not separators.
                if c == "&", i > 0, chars[i - 1] == ">" || chars[i - 1] == "<" { word.append(c); inWord = true; continue }
                if c == "(", word.hasSuffix("$") {
                    word.removeLast()
                    if word.isEmpty { inWord = false }
                }
                flush()
                out.append(.separator)
            case "{", "}":
                // Braces group commands only as whole words.
                if inWord { word.append(c) } else if i + 1 < chars.count, chars[i + 1] == " " || chars[i + 1] == "\n" || c == "}" {
                    out.append(.separator)
                } else { word.append(c); inWord = true }
            default: word.append(c); inWord = true
            }
        }
        return out
    }

    /// Builtins and keywords of `sh` (dash): no file to check.
    static let builtins: Set<String> = [
        "!", ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done", "echo", "elif",
        "else", "esac", "eval", "exec", "exit", "export", "false", "fg", "fi", "for", "getopts", "hash", "if", "in",
        "jobs", "kill", "local", "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "then",
        "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
    ]

    /// The first word of every simple command, skipping assignments, redirections and builtins
    /// (after `exec`/`command` the next word is the command).
    static func commands(inScript script: String) -> [String] {
        var out: [String] = []
        var atStart = true, skipTarget = false
        for token in tokens(script) {
            guard case .word(let w) = token else { atStart = true; skipTarget = false; continue }
            guard atStart else { continue }
            if skipTarget { skipTarget = false; continue }
            if isRedirection(w) {
                // `> /dev/null`: the operator alone, its target is the next word.
                skipTarget = w.last == ">" || w.last == "<"
                continue
            }
            if isAssignment(w) { continue }
            // Keywords and wrappers after which the next word is the command.
            if ["exec", "command", "if", "elif", "while", "until", "then", "do", "else", "!"].contains(w) { continue }
            atStart = false
            if builtins.contains(w) || w.contains("$") || w.contains("%") { continue }
            out.append(w)
        }
        return out
    }

    private static func isRedirection(_ w: String) -> Bool {
        let body = w.drop { $0.isNumber }
        return body.hasPrefix(">") || body.hasPrefix("<")
    }

    private static func isAssignment(_ w: String) -> Bool {
        guard let eq = w.firstIndex(of: "="), eq != w.startIndex else { return false }
        return w[..<eq].allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }
}
