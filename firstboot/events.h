/* Journal MESSAGE_IDs, one per kind of event, so `journalctl
 * MESSAGE_ID=...` finds every failure across a fleet and `journalctl -x`
 * explains it from units/firstboot.catalog. Keep the two in step. */
#pragma once

#define MSGID_RUN_STARTED       "f7f8d327fdb34215a6e0840a74ec570e"
#define MSGID_MODULE_STARTED    "33b7879ba17f45488b81835236da85d3"
#define MSGID_MODULE_FINISHED   "f83c8eee66a34b0ebad991fa7fc3034a"
#define MSGID_MODULE_FAILED     "0f2cb10a448148c396771d544b8582e6"
#define MSGID_MODULE_SKIPPED    "0bc819015b034c1e847c77da18b7f519"
#define MSGID_READY             "6cd774a52645447e81566bc3ea57b86e"
#define MSGID_FAILED            "67d8e4d9db9544e2b035b1590636a587"
#define MSGID_PHONE_HOME_SENT   "35d4b80b350a47ee8abadba89237784f"
#define MSGID_PHONE_HOME_FAILED "9001d51f791f48e087de6ea3aab38479"
/* firstboot agent's jobs (firstboot/agent.c); entries carry FIRSTBOOT_JOB. */
#define MSGID_JOB_STARTED  "f4fce47310f14495b3c187b27dba0db4"
#define MSGID_JOB_FINISHED "57e5badbbc0346d7a5f7068fb93e7746"
#define MSGID_JOB_FAILED   "960d36b090614bac87f560a411fa4593"
#define MSGID_JOB_REJECTED "e77ab716fa6847bc86f3a4d128ef5225"
