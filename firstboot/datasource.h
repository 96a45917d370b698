/* Datasources: where this machine's instance id, hostname and user-data
 * come from. Local sources (a user-data file, a NoCloud or ConfigDrive seed
 * directory, ISO image or labelled block device) and metadata services
 * (EC2 IMDSv2, Hetzner Cloud, DigitalOcean) over HTTP with bounded retries.
 *
 * The sources:
 *   file          user-data from --user-data FILE; instance id from
 *                 --instance-id, else <root>/etc/machine-id when it holds
 *                 32 hex digits, else "file-" + the first 16 hex digits of
 *                 the sha256 of the user-data.
 *   nocloud       meta-data (YAML: instance-id, local-hostname), user-data
 *                 (optional) from --seed DIR or --seed ISO-FILE; without
 *                 --seed from <root>/var/lib/cloud/seed/nocloud, then
 *                 <root>/var/lib/cloud/seed/nocloud-net, then a block device
 *                 labelled cidata (any case): <root>/dev/disk/by-label/cidata
 *                 or CIDATA, then each <root>/sys/class/block/NAME whose
 *                 <root>/dev/NAME is an ISO9660 image with volume id cidata.
 *   configdrive   openstack/latest/meta_data.json (JSON: uuid, hostname) and
 *                 openstack/latest/user_data (optional), from --seed DIR or
 *                 ISO-FILE; without --seed from
 *                 <root>/var/lib/cloud/seed/config_drive, then a block
 *                 device labelled config-2 (searched like cidata).
 *   ec2           IMDSv2 at the metadata URL: PUT /latest/api/token, then
 *                 /latest/meta-data/instance-id, /latest/meta-data/local-hostname
 *                 (optional), /latest/meta-data/public-keys/ (lines N=name;
 *                 404: none) and public-keys/N/openssh-key for each,
 *                 /latest/user-data (404: none), with the token.
 *   hetzner       /hetzner/v1/metadata (YAML: instance-id, hostname,
 *                 public-keys) and /hetzner/v1/userdata (empty: none).
 *   digitalocean  /metadata/v1.json (JSON: droplet_id, hostname,
 *                 public_keys) and /metadata/v1/user-data (404: none).
 *
 * SSH keys (meta-data public-keys for nocloud, meta_data.json public_keys
 * for configdrive, and the above) are read as cloud-init reads them: a
 * string of lines, a list of strings, or a map of names to a string or a
 * list. Each is checked (sshkey_parse()); a malformed one fails the fetch
 * (-EBADMSG) naming the source, the document and the field: installing
 * the others and carrying on could lock the owner out unnoticed.
 *   default       the default bundle baked into the image (`imagegen bake
 *                 --bundle`): user-data from <root>/etc/firstboot/default-user-data;
 *                 instance id as for file (the machine id, which systemd makes
 *                 new on each clone's first boot, else "default-" + the first
 *                 16 hex digits of the sha256 of the user-data).
 *
 * "auto" picks one, in this order:
 *   1. --user-data FILE given: file.
 *   2. --seed given: configdrive when the seed is a directory holding
 *      openstack/latest/meta_data.json or an ISO labelled config-2, else
 *      nocloud.
 *   3. The DMI strings in <root>/sys/class/dmi/id/: sys_vendor "Hetzner":
 *      hetzner; sys_vendor "DigitalOcean": digitalocean; sys_vendor or
 *      bios_vendor "Amazon EC2", or product_uuid beginning with "ec2" (any
 *      case): ec2; chassis_asset_tag or product_name "OpenStack Nova" (or
 *      "OpenStack Compute"): configdrive. A source chosen from DMI that then
 *      fails is an error; nothing else is tried.
 *   4. Local sources: nocloud (seed directories, then a cidata device),
 *      then configdrive (its seed directory, then a config-2 device), then
 *      default (the image's baked-in bundle), the last fallback.
 *   5. Nothing found: an error listing what was tried.
 * Anything found but broken (bad meta-data, user-data over the limit, an
 * unreadable image) is an error, never a reason to try the next source.
 *
 * Every HTTP request uses timeout_ms per attempt and at most attempts
 * tries with a doubling pause from backoff_ms; transport errors, 5xx and
 * 429 are retried. User-data over max_user_data is refused from every
 * source, before it is held in memory whole where the source allows. */
#pragma once

#include <stddef.h>

#define DS_DEFAULT_METADATA_URL "http://169.254.169.254"
#define DS_DEFAULT_TIMEOUT_MS   5000LL
#define DS_DEFAULT_ATTEMPTS     5U
#define DS_DEFAULT_BACKOFF_MS   500LL
#define DS_DEFAULT_MAX_USERDATA (16U * 1024U * 1024U)
/* The default bundle of a baked image, on the server (0600: a bundle
 * holds secrets). */
#define DS_DEFAULT_USER_DATA "/etc/firstboot/default-user-data"

struct ds_options {
        const char *root;           /* NULL = "/" */
        const char *name;           /* see datasource_names(); NULL = "auto" */
        const char *user_data_file; /* --user-data, a path on this host (not under root) */
        const char *seed;           /* --seed: a directory or an ISO image file, on this host */
        const char *metadata_url;   /* replaces DS_DEFAULT_METADATA_URL; NULL = that */
        const char *instance_id;    /* overrides what any source says; may be NULL */
        long long timeout_ms;       /* per HTTP attempt; 0 = DS_DEFAULT_TIMEOUT_MS */
        unsigned attempts;          /* HTTP tries; 0 = DS_DEFAULT_ATTEMPTS */
        long long backoff_ms;       /* first pause between tries; 0 = DS_DEFAULT_BACKOFF_MS */
        size_t max_user_data;       /* bytes; 0 = DS_DEFAULT_MAX_USERDATA */
};

struct ds_result {
        char *source;             /* the datasource that answered: "nocloud", "ec2", ... */
        char *origin;             /* what was read: a path, an image or device, a base URL */
        char *instance_id;        /* never NULL; safe as a file name (see below) */
        char *hostname;           /* may be NULL */
        unsigned char *user_data; /* NULL when the source has none; NUL-terminated */
        size_t user_data_len;
        /* Where the user-data itself was read, for messages about it: a file,
         * "image:member" or a URL; NULL when there is none. */
        char *user_data_origin;
        /* The SSH public keys the source gives (checked by sshkey_parse(),
         * one line each, NULL-terminated), or NULL. */
        char **ssh_keys;
};

/* Fetches from the source o->name. An instance id must be 1 to 128
 * characters of [A-Za-z0-9._:-], not starting with '.', since state is kept
 * in a directory named after it; a hostname must be 1 to 253 characters of
 * [A-Za-z0-9._-]. Returns 0 and fills *ret, or a negative errno with
 * *ret_error (when not NULL) naming the source and what was wrong, e.g.
 * "ec2: PUT http://169.254.169.254/latest/api/token: HTTP 403" or
 * "nocloud: /seed/meta-data:3:1: meta-data: missing 'instance-id'":
 *   -ENOENT      nothing found (no seed, device or file);
 *   -EBADMSG     metadata that does not parse or lacks a required key;
 *   -EFBIG       user-data over the limit;
 *   -EPROTO      an unexpected HTTP status;
 *   -EHOSTUNREACH, -ETIMEDOUT  from the HTTP layer, after every attempt;
 *   -EINVAL      bad options (an unknown name, file without --user-data). */
int datasource_fetch(const struct ds_options *o, struct ds_result *ret, char **ret_error);
void ds_result_free(struct ds_result *r);

/* Parses a document as the datasource source does, without fetching:
 * hetzner (the metadata YAML), digitalocean (v1.json), nocloud
 * (meta-data), configdrive (meta_data.json), ec2 (a public-keys/
 * listing), ec2-key (an openssh-key answer). For the fuzz target. */
int ds_parse_metadata(const char *source, const char *buf, size_t len, struct ds_result *ret,
                      char **ret_error);

/* The accepted names, "auto" first, NULL-terminated. */
const char *const *datasource_names(void);
