// SPDX-License-Identifier: GPL-2.0
/*
 * mdev_edu: a PCI mdev parent for the mdevmon end-to-end tests.
 *
 * A real vGPU host has its mdev types under a PCI device (libvirt: pci_0000_…, `mdev_types` capability);
 * the mtty sample hangs them off a fake "mtty" class device instead. This module binds as a PCI driver to
 * QEMU's emulated `edu` device (1234:11e8, `-device edu`) and registers mtty's mdev types on each one, so
 * the guest has PCI parents as a GPU host does. The mdev callbacks are mtty's own: host/mtty.sh extracts
 * samples/vfio-mdev/mtty.c from the kernel's linux-source tarball next to this file at build time (it is
 * never committed), and this file includes it with mtty's init and exit left unregistered (no "mtty" class
 * device, no char device region).
 *
 * Per PCI device: types mdev_edu-1 (one port, "Single port serial") and mdev_edu-2 (two ports, "Dual port
 * serial"); the type ids are "<PCI driver>-<sysfs name>". All parents draw on mtty's one pool of 24 ports
 * (MAX_MTTYS), so an mdev made on one parent lowers available_instances on the others, as SR-IOV vGPU
 * functions sharing one GPU do. The pool is this module's own: mtty.ko has another.
 *
 * Knobs, module parameters under /sys/module/mdev_edu/parameters/:
 *   fail_available  (rw, bool) while on, reading any mdev_edu type's available_instances fails with
 *                   -EIO ("Input/output error"), on every parent
 *   avail_ports     (ro) the shared pool's free ports
 * Unbinding a parent (echo 0000:00:10.0 > /sys/bus/pci/drivers/mdev_edu/unbind) removes its mdevs and
 * types; bind brings the types back.
 *
 * There is deliberately no MODULE_DEVICE_TABLE: with a modalias, udev would load this module at boot on
 * every guest with an edu device. The scenarios load it themselves (modprobe mdev_edu).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/mdev.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

/*
 * Our module metadata comes first: mtty.c's own (license, version, author, description) is dropped below
 * rather than doubled in modinfo.
 */
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("PCI mdev parent on QEMU's edu device, with mtty's mdev types (mdevmon e2e tests)");

/*
 * mtty's module_init/module_exit would make mtty_dev_init/mtty_dev_exit the module's entry points. They
 * become unused __init/__exit wrappers instead (which the compiler drops, and which keep the two functions
 * "used" for -Wunused-function); the MODULE_* macros become no-ops for mtty.c's tail. linux/module.h is
 * included above, so mtty.c's own #include of it does not define them again; the macros come back after.
 */
#pragma push_macro("module_init")
#pragma push_macro("module_exit")
#pragma push_macro("MODULE_LICENSE")
#pragma push_macro("MODULE_VERSION")
#pragma push_macro("MODULE_AUTHOR")
#pragma push_macro("MODULE_DESCRIPTION")
#pragma push_macro("MODULE_INFO")
#undef module_init
#undef module_exit
#undef MODULE_LICENSE
#undef MODULE_VERSION
#undef MODULE_AUTHOR
#undef MODULE_DESCRIPTION
#undef MODULE_INFO
#define module_init(fn) \
	static int __init __maybe_unused mdev_edu_unused_mtty_init(void) { return fn(); }
#define module_exit(fn) \
	static void __exit __maybe_unused mdev_edu_unused_mtty_exit(void) { fn(); }
#define MODULE_LICENSE(x) static_assert(1)
#define MODULE_VERSION(x) static_assert(1)
#define MODULE_AUTHOR(x) static_assert(1)
#define MODULE_DESCRIPTION(x) static_assert(1)
#define MODULE_INFO(tag, x) static_assert(1)

#include "mtty.c"

#pragma pop_macro("module_init")
#pragma pop_macro("module_exit")
#pragma pop_macro("MODULE_LICENSE")
#pragma pop_macro("MODULE_VERSION")
#pragma pop_macro("MODULE_AUTHOR")
#pragma pop_macro("MODULE_DESCRIPTION")
#pragma pop_macro("MODULE_INFO")

static bool fail_available;
module_param(fail_available, bool, 0644);
MODULE_PARM_DESC(fail_available, "reading a type's available_instances fails with EIO while set");

static int avail_ports_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&mdev_avail_ports));
}

static const struct kernel_param_ops avail_ports_ops = {
	.get = avail_ports_get,
};
module_param_cb(avail_ports, &avail_ports_ops, NULL, 0444);
MODULE_PARM_DESC(avail_ports, "free ports of the pool all parents share (mtty's MAX_MTTYS at load)");

/*
 * The mdev core's available_instances prints get_available()'s unsigned int, so a driver cannot make the
 * read fail through it. Each type's attribute is replaced by this one: the type kobject's sysfs_ops
 * (mdev_sysfs.c's mdev_type_attr_show) take the attribute as a struct mdev_type_attribute, which is
 * private to drivers/vfio/mdev/mdev_sysfs.c; this struct has its layout (the same in 6.1 and 6.12) and
 * its show returns what the core's would, or -EIO while fail_available is set.
 */
struct mdev_edu_type_attribute {
	struct attribute attr;
	ssize_t (*show)(struct mdev_type *mtype, struct mdev_edu_type_attribute *attr, char *buf);
	ssize_t (*store)(struct mdev_type *mtype, struct mdev_edu_type_attribute *attr,
			 const char *buf, size_t count);
};

static ssize_t available_instances_show(struct mdev_type *mtype,
					struct mdev_edu_type_attribute *attr, char *buf)
{
	if (READ_ONCE(fail_available))
		return -EIO;
	return sysfs_emit(buf, "%u\n", mtty_get_available(mtype));
}

static struct mdev_edu_type_attribute mdev_edu_available_instances =
	__ATTR_RO(available_instances);

/* One per bound edu device: an mdev_type belongs to one parent, so every parent has its own. */
struct mdev_edu {
	struct mdev_parent parent;
	struct mtty_type types[ARRAY_SIZE(mtty_types)];
	struct mdev_type *mdev_types[ARRAY_SIZE(mtty_types)];
};

static int mdev_edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct mdev_edu *edu;
	int i, ret;

	edu = kzalloc(sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	/* mtty's names and port counts; the core names the types "<PCI driver>-<sysfs_name>". */
	for (i = 0; i < ARRAY_SIZE(edu->types); i++) {
		edu->types[i].nr_ports = mtty_types[i].nr_ports;
		edu->types[i].type.sysfs_name = mtty_types[i].type.sysfs_name;
		edu->types[i].type.pretty_name = mtty_types[i].type.pretty_name;
		edu->mdev_types[i] = &edu->types[i].type;
	}
	ret = mdev_register_parent(&edu->parent, &pdev->dev, &mtty_driver, edu->mdev_types,
				   ARRAY_SIZE(edu->mdev_types));
	if (ret)
		goto err_free;
	/* sysfs_remove_file goes by the attribute's name: it removes the core's available_instances. */
	for (i = 0; i < ARRAY_SIZE(edu->types); i++) {
		sysfs_remove_file(&edu->types[i].type.kobj, &mdev_edu_available_instances.attr);
		ret = sysfs_create_file(&edu->types[i].type.kobj, &mdev_edu_available_instances.attr);
		if (ret)
			goto err_unregister;
	}
	pci_set_drvdata(pdev, edu);
	return 0;

err_unregister:
	mdev_unregister_parent(&edu->parent);
err_free:
	kfree(edu);
	return ret;
}

/* Also on unbind: the core removes the parent's mdevs (their ports go back to the pool), then the types. */
static void mdev_edu_remove(struct pci_dev *pdev)
{
	struct mdev_edu *edu = pci_get_drvdata(pdev);

	mdev_unregister_parent(&edu->parent);
	kfree(edu);
}

static const struct pci_device_id mdev_edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },	/* QEMU's edu device */
	{ }
};

static struct pci_driver mdev_edu_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = mdev_edu_ids,
	.probe = mdev_edu_probe,
	.remove = mdev_edu_remove,
};

static int __init mdev_edu_init(void)
{
	int ret;

	/* The mdev bus allows one driver per name; mtty.ko registers "mtty" and may be loaded too. */
	mtty_driver.driver.name = KBUILD_MODNAME;
	ret = mdev_register_driver(&mtty_driver);
	if (ret)
		return ret;
	ret = pci_register_driver(&mdev_edu_pci_driver);
	if (ret)
		mdev_unregister_driver(&mtty_driver);
	return ret;
}

static void __exit mdev_edu_exit(void)
{
	pci_unregister_driver(&mdev_edu_pci_driver);
	mdev_unregister_driver(&mtty_driver);
}

module_init(mdev_edu_init);
module_exit(mdev_edu_exit);
