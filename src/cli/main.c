/*
 * main.c: the `abis` operator command: the command table, the global options
 * (--data, --json, --actor), help, dispatch, and opening and closing the
 * engine around a command.
 *
 * A command named with two words ("segment add") is found by its first word
 * and then its second; `abis segment --help` lists the second words.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the options each command takes ---------------------------------------- */

static const cli_optspec no_opts[] = {{NULL, 0, 0, 0}};

static const cli_optspec purpose_add_opts[] = {
    {"basis", 0, 1, 0},       {"fmr", 0, 1, 0}, {"legal-ref", 0, 1, 0},
    {"description", 0, 1, 0}, {NULL, 0, 0, 0},
};
static const cli_optspec modality_add_opts[] = {
    {"kind", 0, 1, 0}, {"dim", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec calibrate_opts[] = {{"file", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec dedup_opts[] = {{"fmr", 0, 1, 0}, {NULL, 0, 0, 0}};
/* The face photo options every command that takes captures accepts. */
#define FACE_OPTS {"face-photo", 0, 1, 1}, {"face-models", 0, 1, 0}, {"face-option", 0, 1, 1}
static const cli_optspec enroll_opts[] = {
    {"segment", 0, 1, 0}, {"template", 0, 1, 1}, {"iris-image", 0, 1, 1}, {"consent", 0, 1, 1},
    {"ref", 0, 1, 0},       {"finger-image", 0, 1, 1}, {"ppi", 0, 1, 0},
    {"channel", 0, 1, 0}, {"force", 0, 0, 0},    FACE_OPTS, {NULL, 0, 0, 0},
};
static const cli_optspec template_add_opts[] = {
    {"template", 0, 1, 0}, {"iris-image", 0, 1, 0}, {"replace", 0, 0, 0}, {"force", 0, 0, 0},
    {"finger-image", 0, 1, 0}, {"ppi", 0, 1, 0},
    {"face-photo", 0, 1, 0}, {"face-models", 0, 1, 0}, {"face-option", 0, 1, 1},
    {NULL, 0, 0, 0}};
static const cli_optspec verify_opts[] = {
    {"purpose", 0, 1, 0}, {"template", 0, 1, 1}, {"iris-image", 0, 1, 1}, {"scores", 0, 0, 0},
    {"finger-image", 0, 1, 1}, {"ppi", 0, 1, 0}, FACE_OPTS, {NULL, 0, 0, 0}};
static const cli_optspec identify_opts[] = {
    {"segment", 0, 1, 0}, {"purpose", 0, 1, 0}, {"template", 0, 1, 1},
    {"iris-image", 0, 1, 1}, {"k", 'k', 1, 0}, {"scores", 0, 0, 0}, {"finger-image", 0, 1, 1},
    {"ppi", 0, 1, 0},       FACE_OPTS, {NULL, 0, 0, 0},
};
static const cli_optspec channel_opts[] = {{"channel", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec lock_opts[] = {{"modality", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec find_opts[] = {{"segment", 0, 1, 0}, {"ref", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec export_opts[] = {{"output", 'o', 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec import_opts[] = {
    {"force", 0, 0, 0}, {"rejects", 0, 1, 0}, {"ids", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec client_add_opts[] = {
    {"segments", 0, 1, 1}, {"purposes", 0, 1, 1}, {"operations", 0, 1, 0}, {"rights", 0, 1, 0},
    {"rate", 0, 1, 0},     {"cert", 0, 1, 0},     {"cert-sha256", 0, 1, 0}, {NULL, 0, 0, 0},
};
static const cli_optspec eval_opts[] = {
    {"set", 0, 1, 1},       {"layout", 0, 1, 0},        {"pairs", 0, 1, 0},
    {"protocol", 0, 1, 0},  {"modality", 0, 1, 0},      {"kind", 0, 1, 0},
    {"dim", 0, 1, 0},       {"out", 'o', 1, 0},         {"name", 0, 1, 1},
    {"bootstrap", 0, 1, 0}, {"threads", 0, 1, 0},       {"check-calibration", 0, 0, 0},
    {"fuse", 0, 1, 0},      {"max-impostors", 0, 1, 0}, {"nonmated-share", 0, 1, 0},
    {"seed", 0, 1, 0},      {"holdout", 0, 1, 0},       {"face-models", 0, 1, 0},
    {"face-option", 0, 1, 1}, {NULL, 0, 0, 0},
};
static const cli_optspec finger_extract_opts[] = {
    {"format", 0, 1, 0}, {"output", 'o', 1, 0}, {"ppi", 0, 1, 0}, {NULL, 0, 0, 0}};
static const cli_optspec calibrate_set_opts[] = {
    {"set", 0, 1, 0},       {"layout", 0, 1, 0},  {"pairs", 0, 1, 0},         {"protocol", 0, 1, 0},
    {"modality", 0, 1, 0},  {"holdout", 0, 1, 0}, {"gallery-size", 0, 1, 0},  {"seed", 0, 1, 0},
    {"bootstrap", 0, 1, 0}, {"threads", 0, 1, 0}, {"max-impostors", 0, 1, 0},
    {"face-models", 0, 1, 0}, {"face-option", 0, 1, 1}, {NULL, 0, 0, 0},
};

/* ---- the command table ----------------------------------------------------- */

#define SUBJECT_HELP                                                                               \
    "SUBJECT is a subject id (32 hex digits, as 'abis enroll' printed it) or\n"                    \
    "SEGMENT/REF: the subject with external reference REF in SEGMENT.\n"

#define TEMPLATE_HELP                                                                              \
    "FILE holds one vector: NumPy .npy (float32 or float64, 1-D or 1 x n), a JSON\n"               \
    "array of numbers, or raw little-endian float32; the format is recognised by\n"                \
    "content.  POSITION is 1-10 (fingers), 'right' (1) or 'left' (2) (eyes); leave it\n"           \
    "out when it does not apply.  --iris-image FILE[@left|@right] (repeatable) gives an\n"         \
    "eye image (BMP, PNG, TIFF, JPEG, PGM or an ISO/IEC 19794-6 record) for the\n"                 \
    "modality of kind iriscode.  --finger-image FILE[@POSITION] (repeatable; POSITION\n"          \
    "1-10 as ISO/IEC 19794-2 numbers fingers: 1 right thumb ... 6 left thumb ... 10 left\n"     \
    "little) gives a fingerprint image (TIFF, PNG, BMP, PGM, JPEG; 8-bit grey) or an\n"         \
    "ISO/IEC 19794-2:2005 / ANSI INCITS 378-2004 minutiae record for the modality of\n"          \
    "kind minutiae; a record of several fingers without @POSITION gives them all.\n"           \
    "Images are rescaled to 500 ppi from the resolution in the file, or --ppi N, or\n"         \
    "else 500.\n"                                                                               \
    "--face-photo FILE (repeatable) gives a face photo (JPEG, PNG, BMP, TIFF, PGM) for\n"          \
    "the modality of kind face: the template is made from it in memory and the photo\n"           \
    "discarded.  --face-models DIR: face-api's model/ folder (default: $ABIS_FACE_MODELS\n"       \
    "or where `make models` installed it); --face-option NAME=VALUE (repeatable):\n"             \
    "detector=ssd|tiny, take_largest=1, and the quality gate's limits (docs/face.md).\n"

/* clang-format off: the table reads best as one entry a paragraph */
const cli_command cli_commands[] = {
    {"init", "[DIR]", "create a new data directory (store, key store, master key)",
     "Creates DIR (default: the --data directory) with mode 0700, a random master key\n"
     "in DIR/master.key (unless $ABIS_MASTER_KEY is set), the data store and the key\n"
     "store.  Refuses a directory that already holds a store.\n"
     "\n"
     "Back up the master key file separately from the data directory: without it\n"
     "the data cannot be read, and whoever has both can read everything.\n"
     "\n"
     "Example:\n"
     "  abis init /srv/abis\n",
     no_opts, 0, 1, CLI_OPEN_NONE, cli_cmd_init},

    {"segment add", "NAME", "add a segment (a separate population: 'federal', 'bank-a')",
     "NAME: 1-63 characters from a-z 0-9 . _ -\n"
     "\n"
     "Example:\n"
     "  abis segment add federal\n",
     no_opts, 1, 1, CLI_OPEN_RW, cli_cmd_segment_add},
    {"segment list", "", "list the segments and how many subjects each holds", "", no_opts, 0, 0,
     CLI_OPEN_RW, cli_cmd_segment_list},

    {"purpose add",
     "NAME --basis consent|statutory --fmr RATE [--legal-ref TEXT] [--description TEXT]",
     "add a purpose (what a comparison is for, its legal basis and target FMR)",
     "Options:\n"
     "  --basis consent|statutory  consent: only subjects who consented to NAME are\n"
     "                             compared; statutory: a law allows it (then\n"
     "                             --legal-ref is required)\n"
     "  --fmr RATE                 target false match rate per comparison, 0 < RATE < 1\n"
     "  --legal-ref TEXT           the law or regulation (statutory purposes)\n"
     "  --description TEXT         free text shown in listings\n"
     "\n"
     "Examples:\n"
     "  abis purpose add bank.remote-id --basis consent --fmr 1e-4 \\\n"
     "      --description 'remote account opening'\n"
     "  abis purpose add border.check --basis statutory --fmr 1e-6 --legal-ref 'Act 12 s.4'\n",
     purpose_add_opts, 1, 1, CLI_OPEN_RW, cli_cmd_purpose_add},
    {"purpose list", "", "list the purposes", "", no_opts, 0, 0, CLI_OPEN_RW, cli_cmd_purpose_list},

    {"modality add", "NAME --kind vector --dim N | NAME --kind iriscode | NAME --kind minutiae | NAME --kind face",
     "declare a modality (face, voice, iris, ...)",
     "Options:\n"
     "  --kind vector     templates are N float32 values compared by cosine similarity\n"
     "  --dim N           the number of values of every template of this modality\n"
     "  --kind iriscode   templates are 2048-bit iris codes made from eye images\n"
     "                    (given with --iris-image); no --dim\n"
     "  --kind minutiae   templates are fingerprint minutiae made from fingerprint\n"
     "                    images or standard minutiae records (given with\n"
     "                    --finger-image); no --dim\n"
     "  --kind face       templates are 128-value face descriptors made from photos\n"
     "                    (given with --face-photo), compared by Euclidean distance\n"
     "                    (score = 1 - distance); no --dim\n"
     "\n"
     "Examples:\n"
     "  abis modality add face --kind vector --dim 512\n"
     "  abis modality add iris --kind iriscode\n"
     "  abis modality add finger --kind minutiae\n"
     "  abis modality add face --kind face\n",
     modality_add_opts, 1, 1, CLI_OPEN_RW, cli_cmd_modality_add},
    {"modality list", "", "list the modalities", "", no_opts, 0, 0, CLI_OPEN_RW,
     cli_cmd_modality_list},
    {"modality calibrate", "NAME --file CALIBRATION.json",
     "replace a modality's score -> false-match-rate calibration",
     "The file is the calibration JSON described in docs/FORMATS.md (\"Calibration\");\n"
     "the engine validates it before storing it.\n"
     "\n"
     "Example:\n"
     "  abis modality calibrate face --file face-calibration.json\n",
     calibrate_opts, 1, 1, CLI_OPEN_RW, cli_cmd_modality_calibrate},

    {"dedup set", "--fmr RATE", "set the deduplication threshold as a false match rate",
     "Enrolments (and added templates) are searched against the segment; a match\n"
     "above this threshold refuses them as duplicates (default 1e-6).\n"
     "\n"
     "Example:\n"
     "  abis dedup set --fmr 1e-7\n",
     dedup_opts, 0, 0, CLI_OPEN_RW, cli_cmd_dedup_set},

    {"enroll",
     "--segment S --template MODALITY=FILE[@POSITION]... [--consent PURPOSE]... [--ref REF] "
     "[--channel C] [--force]",
     "enrol a person: prints the new subject id",
     "Options:\n"
     "  --segment S                          the segment to enrol into (required)\n"
     "  --template MODALITY=FILE[@POSITION]  a template (required, repeatable)\n"
     "  --consent PURPOSE                    a purpose the person consents to (repeatable)\n"
     "  --ref REF                            external reference, unique in the segment\n"
     "  --channel C                          where consent was given: branch, app, web\n"
     "  --force                              enrol even when the person seems enrolled\n"
     "                                       already (audited)\n"
     "\n" TEMPLATE_HELP "\n"
     "The templates are first searched against the segment; if the person is already\n"
     "enrolled the enrolment is refused with the existing subject id (exit 2).\n"
     "\n"
     "Example:\n"
     "  abis enroll --segment federal --ref C-1001 --template face=alice.npy \\\n"
     "      --consent bank.remote-id --channel branch\n",
     enroll_opts, 0, 0, CLI_OPEN_RW, cli_cmd_enroll},

    {"template add", "SUBJECT --template MODALITY=FILE[@POSITION] [--replace] [--force]",
     "add a template to an enrolled subject",
     "Options:\n"
     "  --template MODALITY=FILE[@POSITION]  the template (required)\n"
     "  --replace   first remove the subject's templates of that modality and position\n"
     "  --force     add it even when it matches another subject (audited)\n"
     "\n" SUBJECT_HELP TEMPLATE_HELP "\n"
     "Example:\n"
     "  abis template add federal/C-1001 --template finger=right-index.npy@2\n",
     template_add_opts, 1, 1, CLI_OPEN_RW, cli_cmd_template_add},

    {"verify", "SUBJECT --purpose P --template MODALITY=FILE... [--scores]",
     "1:1: is this probe the subject? (exit 0 match, 1 no match, 2 error or refusal)",
     "Options:\n"
     "  --purpose P                 the purpose of the comparison (required)\n"
     "  --template MODALITY=FILE    a probe (required, repeatable)\n"
     "  --scores                    also show the score, its FMR and the threshold\n"
     "\n" SUBJECT_HELP TEMPLATE_HELP "\n"
     "Refused (exit 2) when the purpose needs consent the subject has not given, or\n"
     "the subject has locked the modality.\n"
     "\n"
     "Example:\n"
     "  abis verify federal/C-1001 --purpose bank.remote-id --template face=probe.npy\n",
     verify_opts, 1, 1, CLI_OPEN_RW, cli_cmd_verify},

    {"identify", "--segment S --purpose P --template MODALITY=FILE [-k N] [--scores]",
     "1:N: who in the segment is this? (candidates, best first)",
     "Options:\n"
     "  --segment S                 the segment to search (required)\n"
     "  --purpose P                 the purpose of the search (required)\n"
     "  --template MODALITY=FILE    the probe (required; repeat it for several\n"
     "                              modalities, fused by likelihood ratio)\n"
     "  -k N, --k N                 at most N candidates (default 10, at most 1000)\n"
     "  --scores                    also show scores and their FMR\n"
     "\n" TEMPLATE_HELP "\n"
     "Only subjects whose consent covers the purpose (all subjects for a statutory\n"
     "purpose) and who have not locked the modality are searched; only candidates\n"
     "above the purpose's threshold are listed, so the answer may be \"no match\".\n"
     "\n"
     "Example:\n"
     "  abis identify --segment federal --purpose border.check --template face=probe.npy -k 5\n",
     identify_opts, 0, 0, CLI_OPEN_RW, cli_cmd_identify},

    {"consent grant", "SUBJECT PURPOSE [--channel C]", "record a subject's consent to a purpose",
     "  --channel C   where the consent was given: branch, app, web\n"
     "\n" SUBJECT_HELP "\n"
     "Example:\n"
     "  abis consent grant federal/C-1001 bank.remote-id --channel app\n",
     channel_opts, 2, 2, CLI_OPEN_RW, cli_cmd_consent_grant},
    {"consent withdraw", "SUBJECT PURPOSE [--channel C]",
     "withdraw a subject's consent to a purpose",
     "  --channel C   where the withdrawal was made\n"
     "\n" SUBJECT_HELP "\n"
     "Example:\n"
     "  abis consent withdraw federal/C-1001 bank.remote-id\n",
     channel_opts, 2, 2, CLI_OPEN_RW, cli_cmd_consent_withdraw},

    {"lock", "SUBJECT [--modality M]",
     "lock a subject's modality (all without --modality): no comparisons",
     "  --modality M   the modality to lock; without it every modality is locked\n"
     "\n" SUBJECT_HELP "\n"
     "Example:\n"
     "  abis lock federal/C-1001 --modality face\n",
     lock_opts, 1, 1, CLI_OPEN_RW, cli_cmd_lock},
    {"unlock", "SUBJECT [--modality M]", "unlock a subject's modality (all without --modality)",
     "  --modality M   the modality to unlock; without it every modality is unlocked\n"
     "\n" SUBJECT_HELP "\n"
     "Example:\n"
     "  abis unlock federal/C-1001\n",
     lock_opts, 1, 1, CLI_OPEN_RW, cli_cmd_unlock},

    {"delete", "SUBJECT", "delete a subject for real: records, templates and data key",
     SUBJECT_HELP "\n"
                  "The audit log keeps that the deletion happened, never what was deleted.\n"
                  "\n"
                  "Example:\n"
                  "  abis delete 3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7\n",
     no_opts, 1, 1, CLI_OPEN_RW, cli_cmd_delete},

    {"subject show", "SUBJECT",
     "what is held about a subject and who used it (never template data)",
     SUBJECT_HELP "\n"
                  "Shows the segment, the external reference, the templates (modality,\n"
                  "position, format, quality; never the data), consents, locks and the\n"
                  "history of operations on the subject.  Reading the view is itself audited.\n"
                  "\n"
                  "Example:\n"
                  "  abis subject show federal/C-1001\n",
     no_opts, 1, 1, CLI_OPEN_RW, cli_cmd_subject_show},
    {"subject find", "--segment S --ref R", "find a subject id by its external reference",
     "Example:\n"
     "  abis subject find --segment federal --ref C-1001\n",
     find_opts, 0, 0, CLI_OPEN_RW, cli_cmd_subject_find},

    {"client add",
     "NAME --segments S,... [--purposes P,...] --operations OPS [--rights R] [--rate N] "
     "[--cert FILE | --cert-sha256 HEX]",
     "register a relying party of abisd: prints its API key once",
     "Options:\n"
     "  --segments S,...     segments the client may use (required; repeatable)\n"
     "  --purposes P,...     purposes it may act for: verify, identify and consents\n"
     "                       (repeatable)\n"
     "  --operations OPS     any of enroll, templates, verify, identify, or all\n"
     "                       (none: only with the subject_management right)\n"
     "  --rights R           any of raw_scores (see scores, not only decisions and\n"
     "                       confidence bands) and subject_management (act for the\n"
     "                       person: view, history, consent, lock, delete)\n"
     "  --rate N             requests per second (token bucket); 0 (default): abisd's\n"
     "                       default (docs/CONFIG.md)\n"
     "  --cert FILE          bind the client to this TLS client certificate (PEM): with\n"
     "                       mutual TLS its requests must present it\n"
     "  --cert-sha256 HEX    the same, given as the SHA-256 of the DER certificate\n"
     "\n"
     "The API key (abis_<key id>_<secret>) is printed once (--json: {\"api_key\"});\n"
     "only a keyed hash of it is stored.  Each client sees its own pseudonymous\n"
     "subject ids, so two clients cannot join their records.\n"
     "\n"
     "Examples:\n"
     "  abis client add bank-a --segments moscow --purposes bank.remote-id \\\n"
     "      --operations enroll,verify\n"
     "  abis client add city-portal --segments moscow --purposes bank.remote-id \\\n"
     "      --operations none --rights subject_management\n",
     client_add_opts, 1, 1, CLI_OPEN_RW, cli_cmd_client_add},
    {"client list", "", "list the clients, their rights and key ids (never their keys)", "",
     no_opts, 0, 0, CLI_OPEN_RW, cli_cmd_client_list},
    {"client rotate", "NAME", "give a client a new API key (printed once; the old one stops)",
     "The client keeps its pseudonymous subject ids.\n"
     "\n"
     "Example:\n"
     "  abis client rotate bank-a\n",
     no_opts, 1, 1, CLI_OPEN_RW, cli_cmd_client_rotate},
    {"client revoke", "NAME", "revoke a client: its API key is refused from now on",
     "Example:\n"
     "  abis client revoke bank-a\n",
     no_opts, 1, 1, CLI_OPEN_RW, cli_cmd_client_revoke},

    {"audit verify", "", "check the audit chain and its signatures (exit 0 intact, 1 broken)",
     "Walks the whole hash chain and every signed checkpoint.  Exit 0 when intact,\n"
     "1 when broken (the entry where it breaks and what is wrong there), 2 on error.\n",
     no_opts, 0, 0, CLI_OPEN_RO, cli_cmd_audit_verify},
    {"audit export", "[--output FILE]", "write the audit log as JSON Lines",
     "  -o FILE, --output FILE   write to FILE (mode 0600) instead of standard output\n"
     "\n"
     "Example:\n"
     "  abis audit export --output audit-2024-05.jsonl\n",
     export_opts, 0, 0, CLI_OPEN_RO, cli_cmd_audit_export},
    {"audit pubkey", "", "print the Ed25519 public key that signs audit checkpoints", "", no_opts,
     0, 0, CLI_OPEN_RO, cli_cmd_audit_pubkey},

    {"import", "FILE|- [--force] [--rejects FILE] [--ids FILE]", "bulk enrolment from JSON Lines",
     "One person a line:\n"
     "  {\"segment\": \"federal\", \"ref\": \"C-1001\",\n"
     "   \"templates\": [{\"modality\": \"face\", \"vector\": [0.01, ...], \"position\": 0}],\n"
     "   \"consents\": [\"bank.remote-id\"]}\n"
     "ref, consents, position and quality are optional; instead of \"vector\" a\n"
     "template may carry \"vector_b64\": base64 of little-endian float32 values.\n"
     "'-' reads standard input.\n"
     "\n"
     "Options:\n"
     "  --force          enrol even when a line's person seems enrolled already\n"
     "  --rejects FILE   write every rejected line as {\"line\", \"code\", \"reason\"}\n"
     "                   (JSON Lines); without it the first 20 go to stderr\n"
     "  --ids FILE       write {\"line\", \"subject_id\"} for every enrolled line as\n"
     "                   soon as it is committed (JSON Lines): the new subject ids\n"
     "\n"
     "A bad line is rejected with its number and reason and the import goes on.\n"
     "Exit 0 when every line was enrolled, 1 when some were rejected, 2 on a fatal\n"
     "error (unreadable file, store failure).\n"
     "\n"
     "Example:\n"
     "  abis import people.jsonl --rejects rejected.jsonl\n",
     import_opts, 1, 1, CLI_OPEN_RW, cli_cmd_import},

    {"eval",
     "--set PATH [--layout L] [--pairs FILE] [--protocol all|fvc|pairs|sessions|1n] "
     "(--modality NAME | --kind vector [--dim N]) [--out DIR] [options]",
     "measure accuracy on a labelled set: DET, histograms, CMC, JSON report",
     "Compares the samples of a labelled set with the modality's own validation,\n"
     "comparison and gallery code, and writes DIR/report.json, DIR/det.svg,\n"
     "DIR/hist.svg and, for 1n, DIR/cmc.svg.  Prints EER, FNMR at FMR 1e-2/1e-3/1e-4\n"
     "(with support, or \"not supported\" when too few impostors) and at zero FMR,\n"
     "d', FTE/FTA,\n"
     "FNIR at FPIR and rank-1..20 identification rates.\n"
     "\n"
     "Options:\n"
     "  --set PATH           a folder or a CSV / JSON Lines file; repeat it to put\n"
     "                       several systems on one DET (hist-N.svg for each)\n"
     "  --layout L           auto (default), folder, csv, jsonl, lfw, fvc, casia, speaker\n"
     "  --pairs FILE         a pairs file (LFW format); implies --protocol pairs\n"
     "  --protocol P         all (every genuine and impostor pair, default), fvc, pairs,\n"
     "                       sessions (genuine pairs across capture sessions only:\n"
     "                       enrol session 1, probe session 2; casia), 1n (first\n"
     "                       sample of each identity enrolled, the rest probes)\n"
     "  --modality NAME      a modality declared in the --data store (its kind and\n"
     "                       dimension); without a store give --kind vector instead\n"
     "  --kind K, --dim N    evaluate without a store: vector (N: taken from the data if\n"
     "                       absent), iriscode (eye images; no --dim), minutiae\n"
     "                       (fingerprint images or minutiae records; no --dim) or face\n"
     "                       (face photos; no --dim; --face-models, --face-option as for\n"
     "                       enroll)\n"
     "  -o DIR, --out DIR    where the report and plots go (default ./eval-report)\n"
     "  --name NAME          the system's name in plots (repeat for several --set)\n"
     "  --bootstrap B        resamplings by identity for 95% intervals (default 100)\n"
     "  --threads T          comparison threads (default 2)\n"
     "  --max-impostors N    all: a seeded random sample of N impostor pairs\n"
     "  --nonmated-share S   1n: share of identities kept out of the gallery (0.3), or\n"
     "                       singletons: the identities with one sample (LFW's 1:N)\n"
     "  --seed S             for sampling and splits (default 1)\n"
     "  --check-calibration  with the modality's stored calibration: its threshold and\n"
     "                       the FMR observed on this (held-out) set at 1e-2/1e-3/1e-4\n"
     "  --fuse M1,M2         multimodal JSON Lines set: calibrations fitted on a share\n"
     "                       of the identities, likelihood-ratio fusion on the rest\n"
     "                       (--holdout S, default 0.5); one DET with each and fused\n"
     "\n"
     "A capture (image, audio) the modality cannot turn into a template (no face\n"
     "found, refused by the quality gate, no extractor for it) counts as a failure to\n"
     "acquire.  Exit 0; 1 when no metrics could be computed; 2 on error.\n"
     "Layouts and protocols: docs/EVALUATION.md.\n"
     "\n"
     "Examples:\n"
     "  abis eval --set faces.jsonl --kind vector --out reports/face\n"
     "  abis eval --set lfw-templates/ --layout lfw --pairs lfw_pairs_dev.txt --modality face\n"
     "  abis eval --set people.jsonl --kind vector --fuse face,voice --out reports/fused\n"
     "  abis eval --set lfw/ --layout lfw --pairs lfw_pairs_dev.txt --kind face\n",
     eval_opts, 0, 0, CLI_OPEN_NONE, cli_cmd_eval},

    {"calibrate",
     "--modality NAME --set PATH [--layout L] [--protocol all|fvc|pairs|sessions] "
     "[--holdout 0.5] "
     "[--gallery-size N] [--seed S]",
     "fit a modality's score -> FMR calibration on a labelled set and store it",
     "Splits the identities of the set into a fit part and a held-out part (seeded),\n"
     "fits the calibration on the fit part's genuine and impostor scores, stores it\n"
     "for the modality (the engine uses it from then on; audited), and prints the\n"
     "FMR observed on the held-out part at the calibration's thresholds for 1e-2,\n"
     "1e-3 and 1e-4, with 95% intervals.\n"
     "\n"
     "Options:\n"
     "  --modality NAME    the declared modality to calibrate (required)\n"
     "  --set PATH         the labelled set (see 'abis eval --help' for layouts)\n"
     "  --protocol P       all (default), fvc, pairs or sessions\n"
     "  --holdout S        share of identities held out for the check (default 0.5)\n"
     "  --gallery-size N   also fit the 1:N FPIR curve and print the thresholds that\n"
     "                     hold FPIR 0.01 and 0.003 at a gallery of N\n"
     "  --seed S           the split's seed (default 1)\n"
     "  --bootstrap B, --threads T, --max-impostors N, --layout L, --pairs FILE: as eval\n"
     "\n"
     "Example:\n"
     "  abis calibrate --modality face --set face-dev.jsonl --gallery-size 100000\n",
     calibrate_set_opts, 0, 0, CLI_OPEN_RW, cli_cmd_calibrate},

    {"finger extract", "FILE[@POSITION]... --output RECORD [--format iso|ansi] [--ppi N]",
     "extract fingerprint minutiae into a standard record (nothing is stored)",
     "Runs OpenABIS's own fingerprint feature extraction on each image (TIFF, PNG,\n"
     "BMP, PGM, JPEG; 8-bit grey) and writes one minutiae record holding a finger\n"
     "view per image, for other vendors' matchers.  POSITION (1-10, as ISO/IEC\n"
     "19794-2 numbers fingers) is recorded with the view; without it the position\n"
     "is 0 (unknown).  Images are rescaled to 500 ppi from the resolution in the\n"
     "file, or --ppi N, or else 500; the record is written at 197 pixels/cm.\n"
     "\n"
     "Options:\n"
     "  -o RECORD, --output RECORD  where the record goes ('-': standard output)\n"
     "  --format iso|ansi           ISO/IEC 19794-2:2005 (default) or ANSI INCITS\n"
     "                              378-2004\n"
     "  --ppi N                     the images' resolution, over the files' own\n"
     "\n"
     "Example:\n"
     "  abis finger extract right-index.png@2 left-index.png@7 -o person.iso\n",
     finger_extract_opts, 1, -1, CLI_OPEN_NONE, cli_cmd_finger_extract},

    {NULL, NULL, NULL, NULL, NULL, 0, 0, CLI_OPEN_NONE, NULL},
};
/* clang-format on */

/* ---- help -------------------------------------------------------------------- */

static void print_main_help(FILE *out)
{
    fprintf(out, "abis: the OpenABIS operator command\n\n");
    cli_print_usage_line(out, NULL);
    fprintf(out, "\nCommands:\n");
    for (const cli_command *c = cli_commands; c->name; c++)
        fprintf(out, "  %-20s %s\n", c->name, c->summary);
    fprintf(out, "\nGlobal options (before or after the command):\n"
                 "  --data DIR     the data directory (default: $ABIS_DATA, else ./var)\n"
                 "  --json         machine output: one JSON object on standard output\n"
                 "  --actor NAME   who is acting, for the audit log (default: operator:$USER)\n"
                 "  -h, --help     help; 'abis COMMAND --help' for one command\n"
                 "\nExit codes: 0 ok, 1 no match / audit broken / import lines rejected,\n"
                 "2 error or refusal.  See docs/CLI.md for the complete reference.\n");
}

static void print_command_help(FILE *out, const cli_command *c)
{
    cli_print_usage_line(out, c);
    fprintf(out, "\n%s.\n", c->summary);
    if (c->help[0])
        fprintf(out, "\n%s", c->help);
    fprintf(out, "\nGlobal options: --data DIR, --json, --actor NAME (see 'abis --help').\n");
}

/* The commands whose first word is `group` ("segment add", "segment list"). */
static void print_group_help(FILE *out, const char *group)
{
    fprintf(out, "usage: abis %s SUBCOMMAND ...\n\nSubcommands:\n", group);
    size_t len = strlen(group);
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strncmp(c->name, group, len) == 0 && c->name[len] == ' ')
            fprintf(out, "  %-20s %s\n", c->name, c->summary);
    fprintf(out, "\n'abis %s SUBCOMMAND --help' for more.\n", group);
}

/* ---- dispatch ------------------------------------------------------------------ */

static const cli_command *find_command(const char *name)
{
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int is_group(const char *word)
{
    size_t len = strlen(word);
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strncmp(c->name, word, len) == 0 && c->name[len] == ' ')
            return 1;
    return 0;
}

abis_caller cli_caller(const cli_ctx *ctx, const char *channel)
{
    abis_caller c = {.actor = ctx->actor, .channel = channel};
    return c;
}

static void default_actor(cli_ctx *ctx)
{
    const char *user = getenv("USER");
    if (user && *user && strlen(user) + 9 <= ABIS_TEXT_MAX)
        snprintf(ctx->actor_buf, sizeof ctx->actor_buf, "operator:%s", user);
    else
        snprintf(ctx->actor_buf, sizeof ctx->actor_buf, "operator");
    ctx->actor = ctx->actor_buf;
}

/* Open the engine for `ctx->cmd`, with a hint when there is no store yet. */
static int open_engine(cli_ctx *ctx)
{
    abis_error err = {0};
    abis_open_options o = {
        .data_dir = ctx->data_dir,
        .actor = ctx->actor,
        .read_only = ctx->cmd->open == CLI_OPEN_RO,
    };
    if (abis_engine_open(&o, &ctx->engine, &err) == ABIS_OK)
        return 0;
    ctx->engine = NULL;
    char db[4096];
    snprintf(db, sizeof db, "%s/abis.db", ctx->data_dir);
    if (access(db, F_OK) != 0 && !strstr(err.message, "abis init")) {
        return cli_failf(ctx, abis_status_name(err.status),
                         "cannot open the data directory '%s': %s (no store there yet? create "
                         "one with 'abis init %s', or point --data or $ABIS_DATA at one)",
                         ctx->data_dir, err.message, ctx->data_dir);
    }
    return cli_fail(ctx, &err);
}

/* Consume global options (and --help) from argv[*i] on, stopping at the first
 * word that is neither; -1 after a bad option (already reported). */
static int scan_global_options(cli_ctx *ctx, int argc, char **argv, int *i, int *help)
{
    for (; *i < argc; (*i)++) {
        if (strcmp(argv[*i], "--help") == 0 || strcmp(argv[*i], "-h") == 0) {
            *help = 1;
            continue;
        }
        int g = cli_global_option(ctx, argc, argv, i);
        if (g < 0)
            return -1;
        if (g == 0)
            break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_ctx ctx = {0};
    const char *env_data = getenv("ABIS_DATA");
    ctx.data_dir = env_data && *env_data ? env_data : "./var";
    default_actor(&ctx);

    /* Global options before the command, then the command's one or two words. */
    int i = 1, help = 0;
    if (scan_global_options(&ctx, argc, argv, &i, &help) != 0)
        return CLI_EXIT_ERROR;
    if (i < argc && strcmp(argv[i], "help") == 0) { /* abis help [COMMAND [SUB]] */
        help = 1;
        i++;
    }
    if (i >= argc) {
        if (help) {
            print_main_help(stdout);
            return CLI_EXIT_OK;
        }
        return cli_usage_error(&ctx, "no command given");
    }
    if (argv[i][0] == '-')
        return cli_usage_error(&ctx, "unknown option '%s'", argv[i]);

    const cli_command *cmd = find_command(argv[i]);
    if (!cmd && is_group(argv[i])) {
        const char *group = argv[i++];
        /* Global options may sit between the two words ("abis segment --json list"). */
        if (scan_global_options(&ctx, argc, argv, &i, &help) != 0)
            return CLI_EXIT_ERROR;
        char name[64];
        if (i < argc) {
            snprintf(name, sizeof name, "%s %s", group, argv[i]);
            cmd = find_command(name);
        }
        if (!cmd) {
            if (help && i >= argc) {
                print_group_help(stdout, group);
                return CLI_EXIT_OK;
            }
            if (i >= argc)
                cli_failf(&ctx, "usage", "'abis %s' needs a subcommand", group);
            else
                cli_failf(&ctx, "usage", "unknown subcommand 'abis %s %s'", group, argv[i]);
            print_group_help(stderr, group);
            return CLI_EXIT_ERROR;
        }
    } else if (!cmd) {
        return cli_usage_error(&ctx, "unknown command '%s'", argv[i]);
    }
    ctx.cmd = cmd;
    i++;

    if (help) { /* "abis help CMD" or "abis --help CMD": the rest of the line does not matter */
        print_command_help(stdout, cmd);
        return CLI_EXIT_OK;
    }
    cli_args args;
    int rc = cli_args_parse(&ctx, cmd, argc - i, argv + i, &args);
    if (rc != 0) {
        cli_args_free(&args);
        if (rc < 0)
            return CLI_EXIT_ERROR;
        print_command_help(stdout, cmd);
        return CLI_EXIT_OK;
    }
    if (cmd->open != CLI_OPEN_NONE && open_engine(&ctx) != 0) {
        cli_args_free(&args);
        return CLI_EXIT_ERROR;
    }
    rc = cmd->run(&ctx, &args);
    abis_engine_close(ctx.engine);
    cli_args_free(&args);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "abis: cannot write to standard output\n");
        return CLI_EXIT_ERROR;
    }
    return rc;
}
