import ArgumentParser

@main
struct Mdevmon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mdevmon",
        abstract: "Watch VFIO mediated devices (mdevs) through libvirt, export them to Prometheus, and repair them after reboots.",
        discussion: """
            mdevmon subscribes to libvirt node-device and domain events, keeps an in-memory index of every \
            mdev (active or defined), serves it as Prometheus metrics and JSON, logs every change to the \
            systemd journal, and can restart persistent mdevs after a host reboot.
            """,
        version: Version.string,
        subcommands: [Run.self, List.self, Doctor.self],
        defaultSubcommand: nil)
}

/// Flags shared by every subcommand that talks to libvirt.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp(
        "libvirt connection URI.", discussion: "mdevmon needs the node-device driver, so use the system instance.",
        valueName: "uri"))
    var connect: String = "qemu:///system"
}
