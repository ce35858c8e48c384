// SPDX-License-Identifier: GPL-2.0
/*
 * The generic netlink family "icmpcap": commands, per-operation policies,
 * events. Spec: netlink/icmpcap.yaml; ABI: include/uapi/linux/icmpcap.h.
 *
 * Every command but GET_INFO names an open /dev/icmpcap with DEV_FD, which
 * the handler resolves in the sender's file table: holding the file is the
 * permission (its open() passed the node's mode). GET_INFO without DEV_FD
 * needs CAP_NET_ADMIN over the socket's namespace.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/slab.h>
#include <linux/netlink.h>
#include <net/genetlink.h>
#include <net/netlink.h>

#include "internal.h"

enum icmpcap_mcgrp_ids { ICMPCAP_MCGRP_EVENTS_ID };

static const struct genl_multicast_group icmpcap_mcgrps[] = {
	[ICMPCAP_MCGRP_EVENTS_ID] = { .name = ICMPCAP_GENL_MCGRP_EVENTS },
};

/* ---- events ---------------------------------------------------------------- */

/* Any context but hard IRQ; gfp must match it. client->net is valid. */
void icmpcap_send_event(struct icmpcap_client *client, u32 type, u32 reason, u64 dropped,
			gfp_t gfp)
{
	struct sk_buff *msg;
	void *hdr;

	if (!client->net || !genl_has_listeners(&icmpcap_genl_family, client->net,
						ICMPCAP_MCGRP_EVENTS_ID))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, gfp);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &icmpcap_genl_family, 0, ICMPCAP_CMD_EVENT);
	if (!hdr)
		goto out_free_msg;
	if (nla_put_u32(msg, ICMPCAP_A_EVENT_TYPE, type) ||
	    nla_put_u32(msg, ICMPCAP_A_SUB_ID, client->sub_id))
		goto out_free_msg;
	if (reason && nla_put_u32(msg, ICMPCAP_A_END_REASON, reason))
		goto out_free_msg;
	if (type == ICMPCAP_EVENT_OVERFLOW &&
	    nla_put_u64_64bit(msg, ICMPCAP_A_DROPPED, dropped, ICMPCAP_A_PAD))
		goto out_free_msg;
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&icmpcap_genl_family, client->net, msg, 0,
				ICMPCAP_MCGRP_EVENTS_ID, gfp);
	return;

out_free_msg:
	nlmsg_free(msg);
}

/* ---- policies ---------------------------------------------------------------- */

static struct netlink_range_validation icmpcap_snaplen_range = {
	.min = 0, .max = 65535,
};
static struct netlink_range_validation icmpcap_data_size_range = {
	.min = ICMPCAP_MIN_DATA_SIZE, .max = ICMPCAP_MAX_DATA_SIZE,
};
static struct netlink_range_validation icmpcap_wakeup_bytes_range = {
	.min = 1, .max = ICMPCAP_MAX_DATA_SIZE,
};
static struct netlink_range_validation icmpcap_wakeup_usec_range = {
	.min = 100, .max = 1000000,
};
static struct netlink_range_validation icmpcap_fd_range = {
	.min = 0, .max = INT_MAX,
};

#define ICMPCAP_POLICY_DEV_FD \
	[ICMPCAP_A_DEV_FD] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_fd_range)

/* The filter and wakeup attributes shared by SUBSCRIBE and UPDATE_FILTER. */
#define ICMPCAP_POLICY_CONFIG \
	[ICMPCAP_A_HOOKS] = NLA_POLICY_MASK(NLA_U32, ICMPCAP_ALL_HOOKS), \
	[ICMPCAP_A_FAMILIES] = NLA_POLICY_MASK(NLA_U32, ICMPCAP_ALL_FAMILIES), \
	[ICMPCAP_A_SNAPLEN] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_snaplen_range), \
	[ICMPCAP_A_TYPES_V4] = NLA_POLICY_EXACT_LEN(ICMPCAP_BITMAP_BYTES), \
	[ICMPCAP_A_TYPES_V6] = NLA_POLICY_EXACT_LEN(ICMPCAP_BITMAP_BYTES), \
	[ICMPCAP_A_CODES] = NLA_POLICY_EXACT_LEN(ICMPCAP_BITMAP_BYTES), \
	[ICMPCAP_A_IFINDEXES] = { .type = NLA_BINARY, .len = ICMPCAP_MAX_IFINDEXES * 4 }, \
	[ICMPCAP_A_DIRECTIONS] = NLA_POLICY_MASK(NLA_U32, ICMPCAP_ALL_DIRS), \
	[ICMPCAP_A_WAKEUP_BYTES] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_wakeup_bytes_range), \
	[ICMPCAP_A_WAKEUP_RECORDS] = { .type = NLA_U32 }, \
	[ICMPCAP_A_WAKEUP_USEC] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_wakeup_usec_range), \
	[ICMPCAP_A_ADDR_RULES] = { .type = NLA_BINARY, \
				   .len = ICMPCAP_MAX_ADDR_RULES * sizeof(struct icmpcap_addr_rule) }

static const struct nla_policy icmpcap_subscribe_policy[ICMPCAP_A_MAX + 1] = {
	ICMPCAP_POLICY_DEV_FD,
	ICMPCAP_POLICY_CONFIG,
	[ICMPCAP_A_RING_DATA_SIZE] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_data_size_range),
};

static const struct nla_policy icmpcap_update_policy[ICMPCAP_A_MAX + 1] = {
	ICMPCAP_POLICY_DEV_FD,
	ICMPCAP_POLICY_CONFIG,
};

/* UNSUBSCRIBE, GET_INFO, GET_STATS. */
static const struct nla_policy icmpcap_dev_fd_policy[ICMPCAP_A_DEV_FD + 1] = {
	ICMPCAP_POLICY_DEV_FD,
};

static const struct nla_policy icmpcap_test_policy[ICMPCAP_A_MAX + 1] = {
	ICMPCAP_POLICY_DEV_FD,
	[ICMPCAP_A_TEST_COUNT] = { .type = NLA_U64 },
	[ICMPCAP_A_TEST_RATE] = { .type = NLA_U64 },
	[ICMPCAP_A_TEST_CAP_LEN] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_snaplen_range),
	[ICMPCAP_A_TEST_MODE] = NLA_POLICY_MAX(NLA_U32, ICMPCAP_TEST_MODE_NETLINK),
	[ICMPCAP_A_TEST_CPU_MASK] = { .type = NLA_U64 },
};

/* ---- helpers ------------------------------------------------------------------ */

/*
 * Resolves ICMPCAP_A_DEV_FD in the sender's file table (genl doit runs in the
 * sender's context). Returns a referenced file, NULL when absent and not
 * needed, or ERR_PTR.
 */
struct file *icmpcap_genl_file(struct genl_info *info, bool need_fd)
{
	struct nlattr *attr = info->attrs[ICMPCAP_A_DEV_FD];
	struct file *file;

	if (!attr) {
		if (!need_fd)
			return NULL;
		NL_SET_ERR_MSG(info->extack, "DEV_FD is required: the fd of an open /dev/icmpcap");
		return ERR_PTR(-EINVAL);
	}
	file = fget(nla_get_u32(attr));
	if (!file) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "DEV_FD is not an open file");
		return ERR_PTR(-EBADF);
	}
	if (file->f_op != &icmpcap_fops) {
		fput(file);
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "DEV_FD is not /dev/icmpcap");
		return ERR_PTR(-ENOTTY);
	}
	return file;
}

static void icmpcap_cfg_defaults(struct icmpcap_cfg *cfg, u32 data_size)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->hooks = ICMPCAP_DEFAULT_HOOKS;
	cfg->families = ICMPCAP_ALL_FAMILIES;
	cfg->snaplen = ICMPCAP_DEFAULT_SNAPLEN;
	cfg->directions = ICMPCAP_ALL_DIRS;
	cfg->wakeup_bytes = data_size / 4;
	cfg->wakeup_usec = ICMPCAP_DEFAULT_WAKEUP_USEC;
	memset(cfg->types_v4, 0xff, sizeof(cfg->types_v4));
	memset(cfg->types_v6, 0xff, sizeof(cfg->types_v6));
	memset(cfg->codes, 0xff, sizeof(cfg->codes));
}

static int icmpcap_parse_addr_rules(struct nlattr *attr, struct icmpcap_cfg *cfg,
				    struct netlink_ext_ack *extack)
{
	const struct icmpcap_addr_rule *rules = nla_data(attr);
	unsigned int i, n, b;

	if (nla_len(attr) % sizeof(*rules)) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "ADDR_RULES: array of struct icmpcap_addr_rule");
		return -EINVAL;
	}
	n = nla_len(attr) / sizeof(*rules);
	for (i = 0; i < n; i++) {
		const struct icmpcap_addr_rule *r = &rules[i];
		unsigned int max = r->family == ICMPCAP_FAMILY_IPV4 ? 32 : 128;

		if ((r->family != ICMPCAP_FAMILY_IPV4 && r->family != ICMPCAP_FAMILY_IPV6) ||
		    r->prefix_len > max || r->side > ICMPCAP_ADDR_DST || r->__pad) {
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "ADDR_RULES: family 4 or 6, prefix_len within it, side 0-2, pad 0");
			return -EINVAL;
		}
		for (b = r->prefix_len; b < 128; b++) {
			if (r->addr[b / 8] & (0x80 >> (b % 8))) {
				NL_SET_ERR_MSG_ATTR(extack, attr,
						    "ADDR_RULES: address bits past prefix_len must be zero");
				return -EINVAL;
			}
		}
	}
	memcpy(cfg->addr_rules, rules, n * sizeof(*rules));
	cfg->nr_addr_rules = n;
	return 0;
}

/* Applies the config attributes present in info to cfg, validating them. */
static int icmpcap_cfg_parse(struct genl_info *info, struct icmpcap_cfg *cfg, u32 data_size)
{
	struct nlattr **a = info->attrs;
	struct nlattr *attr;
	int err;

	if (a[ICMPCAP_A_HOOKS])
		cfg->hooks = nla_get_u32(a[ICMPCAP_A_HOOKS]);
	if (a[ICMPCAP_A_FAMILIES])
		cfg->families = nla_get_u32(a[ICMPCAP_A_FAMILIES]);
	if (a[ICMPCAP_A_SNAPLEN])
		cfg->snaplen = nla_get_u32(a[ICMPCAP_A_SNAPLEN]);
	if (a[ICMPCAP_A_DIRECTIONS])
		cfg->directions = nla_get_u32(a[ICMPCAP_A_DIRECTIONS]);
	if (a[ICMPCAP_A_WAKEUP_BYTES])
		cfg->wakeup_bytes = nla_get_u32(a[ICMPCAP_A_WAKEUP_BYTES]);
	if (a[ICMPCAP_A_WAKEUP_RECORDS])
		cfg->wakeup_records = nla_get_u32(a[ICMPCAP_A_WAKEUP_RECORDS]);
	if (a[ICMPCAP_A_WAKEUP_USEC])
		cfg->wakeup_usec = nla_get_u32(a[ICMPCAP_A_WAKEUP_USEC]);
	if (a[ICMPCAP_A_TYPES_V4])
		nla_memcpy(cfg->types_v4, a[ICMPCAP_A_TYPES_V4], ICMPCAP_BITMAP_BYTES);
	if (a[ICMPCAP_A_TYPES_V6])
		nla_memcpy(cfg->types_v6, a[ICMPCAP_A_TYPES_V6], ICMPCAP_BITMAP_BYTES);
	if (a[ICMPCAP_A_CODES])
		nla_memcpy(cfg->codes, a[ICMPCAP_A_CODES], ICMPCAP_BITMAP_BYTES);
	attr = a[ICMPCAP_A_IFINDEXES];
	if (attr) {
		if (nla_len(attr) % sizeof(u32)) {
			NL_SET_ERR_MSG_ATTR(info->extack, attr, "IFINDEXES: array of __u32");
			return -EINVAL;
		}
		cfg->nr_ifindexes = nla_len(attr) / sizeof(u32);
		memcpy(cfg->ifindexes, nla_data(attr), nla_len(attr));
	}
	if (a[ICMPCAP_A_ADDR_RULES]) {
		err = icmpcap_parse_addr_rules(a[ICMPCAP_A_ADDR_RULES], cfg, info->extack);
		if (err)
			return err;
	}
	if (!cfg->hooks) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[ICMPCAP_A_HOOKS], "HOOKS: empty");
		return -EINVAL;
	}
	if (!cfg->families) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[ICMPCAP_A_FAMILIES], "FAMILIES: empty");
		return -EINVAL;
	}
	/* Guarantees that a record always fits in an empty ring, pad included. */
	if (ICMPCAP_ALIGN((u64)ICMPCAP_RECORD_HDR_SIZE + cfg->snaplen) > data_size / 2) {
		NL_SET_ERR_MSG(info->extack, "SNAPLEN: records must fit twice in RING_DATA_SIZE");
		return -EINVAL;
	}
	if (cfg->wakeup_bytes > data_size) {
		NL_SET_ERR_MSG(info->extack, "WAKEUP_BYTES: larger than RING_DATA_SIZE");
		return -EINVAL;
	}
	return 0;
}

static int icmpcap_put_cfg(struct sk_buff *msg, const struct icmpcap_cfg *cfg)
{
	if (nla_put_u32(msg, ICMPCAP_A_HOOKS, cfg->hooks) ||
	    nla_put_u32(msg, ICMPCAP_A_FAMILIES, cfg->families) ||
	    nla_put_u32(msg, ICMPCAP_A_SNAPLEN, cfg->snaplen) ||
	    nla_put_u32(msg, ICMPCAP_A_DIRECTIONS, cfg->directions) ||
	    nla_put_u32(msg, ICMPCAP_A_WAKEUP_BYTES, cfg->wakeup_bytes) ||
	    nla_put_u32(msg, ICMPCAP_A_WAKEUP_RECORDS, cfg->wakeup_records) ||
	    nla_put_u32(msg, ICMPCAP_A_WAKEUP_USEC, cfg->wakeup_usec) ||
	    nla_put(msg, ICMPCAP_A_TYPES_V4, ICMPCAP_BITMAP_BYTES, cfg->types_v4) ||
	    nla_put(msg, ICMPCAP_A_TYPES_V6, ICMPCAP_BITMAP_BYTES, cfg->types_v6) ||
	    nla_put(msg, ICMPCAP_A_CODES, ICMPCAP_BITMAP_BYTES, cfg->codes) ||
	    nla_put(msg, ICMPCAP_A_IFINDEXES, cfg->nr_ifindexes * sizeof(u32), cfg->ifindexes) ||
	    nla_put(msg, ICMPCAP_A_ADDR_RULES, cfg->nr_addr_rules * sizeof(cfg->addr_rules[0]),
		    cfg->addr_rules))
		return -EMSGSIZE;
	return 0;
}

/*
 * icmpcap_mutex held: client state and cfg are stable. Builds the reply of
 * SUBSCRIBE, UPDATE_FILTER and GET_INFO; the caller sends it.
 */
static struct sk_buff *icmpcap_info_msg(struct genl_info *info, u8 cmd,
					struct icmpcap_client *client)
{
	const struct icmpcap_cfg *cfg = NULL;
	struct sk_buff *msg;
	void *hdr;

	lockdep_assert_held(&icmpcap_mutex);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return ERR_PTR(-ENOMEM);
	hdr = genlmsg_put_reply(msg, info, &icmpcap_genl_family, 0, cmd);
	if (!hdr)
		goto out_free_msg;
	if (nla_put_u32(msg, ICMPCAP_A_ABI_VERSION, ICMPCAP_ABI_VERSION) ||
	    nla_put_u32(msg, ICMPCAP_A_NR_RINGS, nr_cpu_ids) ||
	    nla_put_u32(msg, ICMPCAP_A_NR_SUBSCRIPTIONS, icmpcap_nr_subs))
		goto out_free_msg;
	if (client && client->rings) {
		if (nla_put_u32(msg, ICMPCAP_A_DATA_SIZE, client->data_size) ||
		    nla_put_u32(msg, ICMPCAP_A_RING_STRIDE,
				ICMPCAP_RING_HDR_SIZE + client->data_size) ||
		    nla_put_u32(msg, ICMPCAP_A_SUB_ID, client->sub_id))
			goto out_free_msg;
	}
	if (client)
		cfg = rcu_dereference_protected(client->cfg, lockdep_is_held(&icmpcap_mutex));
	if (cfg && icmpcap_put_cfg(msg, cfg))
		goto out_free_msg;
	genlmsg_end(msg, hdr);
	return msg;

out_free_msg:
	nlmsg_free(msg);
	return ERR_PTR(-EMSGSIZE);
}

/* ---- commands ------------------------------------------------------------------ */

/*
 * Validation and every allocation (filter, rings, reply) happen before
 * icmpcap_mutex is taken; the rings are charged to the caller's memory
 * cgroup and count against max_ring_bytes.
 */
static int icmpcap_cmd_subscribe(struct sk_buff *skb, struct genl_info *info)
{
	u32 data_size = ICMPCAP_DEFAULT_DATA_SIZE, nr = nr_cpu_ids;
	struct icmpcap_ring *rings = NULL;
	struct icmpcap_client *client;
	struct icmpcap_net *inet;
	struct icmpcap_cfg *cfg;
	struct sk_buff *msg;
	struct file *file;
	u64 bytes;
	int err;

	file = icmpcap_genl_file(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;

	if (info->attrs[ICMPCAP_A_RING_DATA_SIZE]) {
		data_size = nla_get_u32(info->attrs[ICMPCAP_A_RING_DATA_SIZE]);
		if (!is_power_of_2(data_size)) {
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[ICMPCAP_A_RING_DATA_SIZE],
					    "RING_DATA_SIZE: not a power of two");
			err = -EINVAL;
			goto out_put_file;
		}
	}
	cfg = kmalloc(sizeof(*cfg), GFP_KERNEL_ACCOUNT);
	if (!cfg) {
		err = -ENOMEM;
		goto out_put_file;
	}
	icmpcap_cfg_defaults(cfg, data_size);
	err = icmpcap_cfg_parse(info, cfg, data_size);
	if (err)
		goto out_free_cfg;
	if (READ_ONCE(client->state) != ICMPCAP_IDLE) {
		err = -EBUSY;
		goto out_busy;
	}
	bytes = icmpcap_rings_bytes(nr, data_size);
	if (!icmpcap_ring_bytes_reserve(bytes)) {
		NL_SET_ERR_MSG(info->extack,
			       "ring memory limit reached (module parameter max_ring_bytes): use a smaller RING_DATA_SIZE or end other captures");
		err = -ENOMEM;
		goto out_free_cfg;
	}
	rings = icmpcap_rings_alloc(client, nr, data_size);
	if (!rings) {
		NL_SET_ERR_MSG(info->extack, "cannot allocate the rings: use a smaller RING_DATA_SIZE");
		err = -ENOMEM;
		goto out_release_bytes;
	}

	mutex_lock(&icmpcap_mutex);
	if (client->state != ICMPCAP_IDLE) {
		err = -EBUSY;
		goto out_unlock;
	}
	inet = icmpcap_pernet(genl_info_net(info));
	if (inet->nr_subs >= READ_ONCE(icmpcap_max_subs_per_ns)) {
		NL_SET_ERR_MSG(info->extack,
			       "too many subscriptions in this network namespace (module parameter max_subs_per_ns)");
		err = -EMFILE;
		goto out_unlock;
	}
	if (icmpcap_user_subs(current_uid()) >= READ_ONCE(icmpcap_max_subs_per_user)) {
		NL_SET_ERR_MSG(info->extack,
			       "too many subscriptions for this user (module parameter max_subs_per_user)");
		err = -EMFILE;
		goto out_unlock;
	}
	err = icmpcap_hooks_get(inet, cfg->hooks, cfg->families);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "cannot register the netfilter hooks");
		goto out_unlock;
	}
	client->nr_rings = nr;
	client->data_size = data_size;
	/* Pairs with smp_load_acquire() in icmpcap_mmap() and icmpcap_poll(). */
	smp_store_release(&client->rings, rings);
	rings = NULL;
	/* From here on the hooks write into the rings. */
	icmpcap_sub_start(client, cfg, genl_info_net(info), info->snd_portid);
	msg = icmpcap_info_msg(info, ICMPCAP_CMD_SUBSCRIBE, client);
	mutex_unlock(&icmpcap_mutex);
	/* A subscription whose reply cannot be delivered is ended: nobody knows of it. */
	err = IS_ERR(msg) ? PTR_ERR(msg) : genlmsg_reply(msg, info);
	if (err)
		icmpcap_sub_end(client, ICMPCAP_END_UNSUBSCRIBE);
	fput(file);
	return err;

out_unlock:
	mutex_unlock(&icmpcap_mutex);
	icmpcap_rings_free(rings, nr);
out_release_bytes:
	icmpcap_ring_bytes_release(bytes);
out_busy:
	if (err == -EBUSY)
		NL_SET_ERR_MSG(info->extack,
			       "this file already has a subscription: open the device again");
out_free_cfg:
	kfree(cfg);
out_put_file:
	fput(file);
	return err;
}

static int icmpcap_cmd_unsubscribe(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_client *client;
	struct file *file;

	file = icmpcap_genl_file(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	if (READ_ONCE(client->state) != ICMPCAP_ACTIVE) {
		fput(file);
		NL_SET_ERR_MSG(info->extack, "no active subscription on this file");
		return -ENOENT;
	}
	icmpcap_sub_end(client, ICMPCAP_END_UNSUBSCRIBE);
	fput(file);
	return 0;
}

/*
 * Make before break: the hooks the new filter needs are taken before the
 * filter is swapped in, and those only the old one needed are dropped after,
 * so no packet falls between two filters and a failure changes nothing.
 */
static int icmpcap_cmd_update_filter(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_cfg *cfg, *old;
	struct icmpcap_client *client;
	struct icmpcap_net *inet;
	struct sk_buff *msg;
	struct file *file;
	u32 old_hooks, old_families;
	int err;

	file = icmpcap_genl_file(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	cfg = kmalloc(sizeof(*cfg), GFP_KERNEL_ACCOUNT);
	if (!cfg) {
		err = -ENOMEM;
		goto out_put_file;
	}
	mutex_lock(&icmpcap_mutex);
	if (client->state != ICMPCAP_ACTIVE) {
		NL_SET_ERR_MSG(info->extack, "no active subscription on this file");
		err = -ENOENT;
		goto out_unlock;
	}
	old = rcu_dereference_protected(client->cfg, lockdep_is_held(&icmpcap_mutex));
	memcpy(cfg, old, sizeof(*cfg));
	err = icmpcap_cfg_parse(info, cfg, client->data_size);
	if (err)
		goto out_unlock;
	inet = icmpcap_pernet(client->net);
	err = icmpcap_hooks_get(inet, cfg->hooks, cfg->families);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "cannot register the netfilter hooks");
		goto out_unlock;
	}
	old_hooks = client->held_hooks;
	old_families = client->held_families;
	client->held_hooks = cfg->hooks;
	client->held_families = cfg->families;
	rcu_assign_pointer(client->cfg, cfg);
	icmpcap_hooks_put(inet, old_hooks, old_families);
	kfree_rcu(old, rcu);
	WRITE_ONCE(client->wakeup_ns, (u64)cfg->wakeup_usec * NSEC_PER_USEC);
	icmpcap_send_event(client, ICMPCAP_EVENT_CONFIG_CHANGED, 0, 0, GFP_KERNEL);
	msg = icmpcap_info_msg(info, ICMPCAP_CMD_UPDATE_FILTER, client);
	mutex_unlock(&icmpcap_mutex);
	fput(file);
	return IS_ERR(msg) ? PTR_ERR(msg) : genlmsg_reply(msg, info);

out_unlock:
	mutex_unlock(&icmpcap_mutex);
	kfree(cfg);
out_put_file:
	fput(file);
	return err;
}

static int icmpcap_cmd_get_info(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	struct file *file;

	file = icmpcap_genl_file(info, false);
	if (IS_ERR(file))
		return PTR_ERR(file);
	if (!file && !netlink_ns_capable(skb, genl_info_net(info)->user_ns, CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG(info->extack,
			       "not allowed: name an open /dev/icmpcap with DEV_FD (or hold CAP_NET_ADMIN)");
		return -EPERM;
	}
	mutex_lock(&icmpcap_mutex);
	msg = icmpcap_info_msg(info, ICMPCAP_CMD_GET_INFO, file ? file->private_data : NULL);
	mutex_unlock(&icmpcap_mutex);
	if (file)
		fput(file);
	return IS_ERR(msg) ? PTR_ERR(msg) : genlmsg_reply(msg, info);
}

static int icmpcap_cmd_get_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_client *client;
	u64 captured = 0, dropped = 0;
	struct icmpcap_ring *rings;
	struct sk_buff *msg;
	struct file *file;
	size_t array_len;
	bool arrays;
	void *hdr;
	u32 i;
	int err;

	file = icmpcap_genl_file(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	/* The file reference keeps the rings; they never change once set. */
	rings = smp_load_acquire(&client->rings);
	if (!rings) {
		NL_SET_ERR_MSG(info->extack, "no subscription on this file");
		err = -ENOENT;
		goto out_put_file;
	}
	/* nla_len is 16 bits: beyond 8,190 rings the arrays are left out. */
	array_len = (size_t)client->nr_rings * sizeof(u64);
	arrays = nla_attr_size(array_len) <= U16_MAX;
	err = -ENOMEM;
	msg = genlmsg_new((arrays ? 2 * nla_total_size(array_len) : 0) + 256, GFP_KERNEL);
	if (!msg)
		goto out_put_file;
	err = -EMSGSIZE;
	hdr = genlmsg_put_reply(msg, info, &icmpcap_genl_family, 0, ICMPCAP_CMD_GET_STATS);
	if (!hdr)
		goto out_free_msg;
	if (arrays) {
		struct nlattr *cap_attr, *drop_attr;

		cap_attr = nla_reserve(msg, ICMPCAP_A_PERCPU_CAPTURED, array_len);
		drop_attr = nla_reserve(msg, ICMPCAP_A_PERCPU_DROPPED, array_len);
		if (!cap_attr || !drop_attr)
			goto out_free_msg;
		for (i = 0; i < client->nr_rings; i++) {
			u64 c, d;

			icmpcap_ring_stats(&rings[i], &c, &d);
			((u64 *)nla_data(cap_attr))[i] = c;
			((u64 *)nla_data(drop_attr))[i] = d;
			captured += c;
			dropped += d;
		}
	} else {
		for (i = 0; i < client->nr_rings; i++) {
			u64 c, d;

			icmpcap_ring_stats(&rings[i], &c, &d);
			captured += c;
			dropped += d;
		}
	}
	if (nla_put_u64_64bit(msg, ICMPCAP_A_CAPTURED, captured, ICMPCAP_A_PAD) ||
	    nla_put_u64_64bit(msg, ICMPCAP_A_DROPPED, dropped, ICMPCAP_A_PAD) ||
	    nla_put_u32(msg, ICMPCAP_A_SUB_ID, client->sub_id))
		goto out_free_msg;
	genlmsg_end(msg, hdr);
	fput(file);
	return genlmsg_reply(msg, info);

out_free_msg:
	nlmsg_free(msg);
out_put_file:
	fput(file);
	return err;
}

#ifndef ICMPCAP_TEST
static int icmpcap_cmd_test_produce(struct sk_buff *skb, struct genl_info *info)
{
	struct file *file = icmpcap_genl_file(info, false);

	if (IS_ERR(file))
		return PTR_ERR(file);
	if (file)
		fput(file);
	NL_SET_ERR_MSG(info->extack, "not a test build (make ICMPCAP_TEST=1)");
	return -EOPNOTSUPP;
}
#endif

static const struct genl_ops icmpcap_genl_ops[] = {
	{
		.cmd = ICMPCAP_CMD_SUBSCRIBE,
		.doit = icmpcap_cmd_subscribe,
		.policy = icmpcap_subscribe_policy,
		.maxattr = ARRAY_SIZE(icmpcap_subscribe_policy) - 1,
	},
	{
		.cmd = ICMPCAP_CMD_UNSUBSCRIBE,
		.doit = icmpcap_cmd_unsubscribe,
		.policy = icmpcap_dev_fd_policy,
		.maxattr = ARRAY_SIZE(icmpcap_dev_fd_policy) - 1,
	},
	{
		.cmd = ICMPCAP_CMD_UPDATE_FILTER,
		.doit = icmpcap_cmd_update_filter,
		.policy = icmpcap_update_policy,
		.maxattr = ARRAY_SIZE(icmpcap_update_policy) - 1,
	},
	{
		.cmd = ICMPCAP_CMD_GET_INFO,
		.doit = icmpcap_cmd_get_info,
		.policy = icmpcap_dev_fd_policy,
		.maxattr = ARRAY_SIZE(icmpcap_dev_fd_policy) - 1,
	},
	{
		.cmd = ICMPCAP_CMD_GET_STATS,
		.doit = icmpcap_cmd_get_stats,
		.policy = icmpcap_dev_fd_policy,
		.maxattr = ARRAY_SIZE(icmpcap_dev_fd_policy) - 1,
	},
	{
		.cmd = ICMPCAP_CMD_TEST_PRODUCE,
		.doit = icmpcap_cmd_test_produce,
		.policy = icmpcap_test_policy,
		.maxattr = ARRAY_SIZE(icmpcap_test_policy) - 1,
	},
};

struct genl_family icmpcap_genl_family = {
	.name = ICMPCAP_GENL_NAME,
	.version = ICMPCAP_GENL_VERSION,
	.maxattr = ICMPCAP_A_MAX,
	.netnsok = true,
	/* Handlers serialise on icmpcap_mutex; TEST_PRODUCE blocks without it. */
	.parallel_ops = true,
	.module = THIS_MODULE,
	.ops = icmpcap_genl_ops,
	.n_ops = ARRAY_SIZE(icmpcap_genl_ops),
	.mcgrps = icmpcap_mcgrps,
	.n_mcgrps = ARRAY_SIZE(icmpcap_mcgrps),
};

int icmpcap_genl_init(void)
{
	return genl_register_family(&icmpcap_genl_family);
}

void icmpcap_genl_exit(void)
{
	genl_unregister_family(&icmpcap_genl_family);
}
