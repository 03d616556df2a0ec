/*
 * crypto.c: the key hierarchy, sealing, signing and hashing on libsodium
 * (see crypto.h for the hierarchy).  Nothing here writes its own primitive.
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

_Static_assert(ABIS_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(ABIS_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(ABIS_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(ABIS_KEY_BYTES == crypto_kdf_KEYBYTES, "kdf key size");
_Static_assert(ABIS_SIGN_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "sign pk size");
_Static_assert(ABIS_SIGN_SK_BYTES == crypto_sign_SECRETKEYBYTES, "sign sk size");
_Static_assert(ABIS_SIGNATURE_BYTES == crypto_sign_BYTES, "signature size");

abis_status abis_crypto_init(abis_error *err)
{
    if (sodium_init() < 0)
        return abis_error_set(err, ABIS_E_CRYPTO, "libsodium could not be initialised");
    return ABIS_OK;
}

void abis_random_bytes(void *out, size_t len)
{
    randombytes_buf(out, len);
}

abis_status abis_master_key_create(const char *path, abis_error *err)
{
    abis_key k;
    char hex[2 * ABIS_KEY_BYTES + 2];
    abis_key_random(&k);
    sodium_bin2hex(hex, sizeof hex - 1, k.bytes, sizeof k.bytes);
    abis_key_wipe(&k);
    strcat(hex, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        sodium_memzero(hex, sizeof hex);
        return abis_error_set(err, ABIS_E_IO, "cannot create master key file %s: %s", path,
                              strerror(errno));
    }
    size_t len = strlen(hex);
    ssize_t w = write(fd, hex, len);
    int sync_rc = fsync(fd);
    int close_rc = close(fd);
    sodium_memzero(hex, sizeof hex);
    if (w != (ssize_t)len || sync_rc != 0 || close_rc != 0) {
        int e = errno;
        unlink(path);
        return abis_error_set(err, ABIS_E_IO, "cannot write master key file %s: %s", path,
                              strerror(e));
    }
    return ABIS_OK;
}

/* Parse 64 hex digits (surrounding white space allowed) into a key. */
static int parse_key_hex(const char *text, abis_key *out)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    size_t n = strlen(text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
                 text[n - 1] == '\t'))
        n--;
    size_t bin_len = 0;
    if (n != 2 * ABIS_KEY_BYTES)
        return -1;
    if (sodium_hex2bin(out->bytes, sizeof out->bytes, text, n, NULL, &bin_len, NULL) != 0 ||
        bin_len != ABIS_KEY_BYTES)
        return -1;
    return 0;
}

abis_status abis_master_key_load(const char *data_dir, const char *hex, abis_key *out,
                                 abis_error *err)
{
    if (!hex) {
        const char *env = getenv("ABIS_MASTER_KEY");
        if (env && *env)
            hex = env;
    }
    if (hex) {
        if (parse_key_hex(hex, out) != 0)
            return abis_error_set(err, ABIS_E_CRYPTO,
                                  "master key given in ABIS_MASTER_KEY or --master-key must be "
                                  "64 hex digits (32 bytes)");
        return ABIS_OK;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/master.key", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return abis_error_set(err, ABIS_E_CRYPTO,
                              "cannot read master key %s: %s (set ABIS_MASTER_KEY or restore "
                              "the key file)",
                              path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
        close(fd);
        return abis_error_set(err, ABIS_E_CRYPTO,
                              "master key %s is readable by group or others; run 'chmod 600 %s'",
                              path, path);
    }
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return abis_error_set(err, ABIS_E_IO, "cannot read master key %s: %s", path,
                              strerror(errno));
    buf[n] = '\0';
    int rc = parse_key_hex(buf, out);
    sodium_memzero(buf, sizeof buf);
    if (rc != 0)
        return abis_error_set(err, ABIS_E_CRYPTO,
                              "master key file %s is corrupt: expected 64 hex digits", path);
    return ABIS_OK;
}

void abis_key_derive(const abis_key *master, const char ctx[8], uint64_t id, abis_key *out)
{
    crypto_kdf_derive_from_key(out->bytes, sizeof out->bytes, id, ctx, master->bytes);
}

void abis_key_random(abis_key *out)
{
    crypto_aead_xchacha20poly1305_ietf_keygen(out->bytes);
}

void abis_key_wipe(abis_key *k)
{
    sodium_memzero(k, sizeof *k);
}

void abis_key_check_value(const abis_key *master, unsigned char out[ABIS_KCV_BYTES])
{
    static const char label[] = "abis-key-check-v1";
    abis_key kcv_key;
    abis_key_derive(master, "abisKCV_", 1, &kcv_key);
    crypto_generichash(out, ABIS_KCV_BYTES, (const unsigned char *)label, sizeof label - 1,
                       kcv_key.bytes, sizeof kcv_key.bytes);
    abis_key_wipe(&kcv_key);
}

void abis_seal(const abis_key *k, const void *plain, size_t len, const void *ad, size_t adlen,
               unsigned char *out)
{
    unsigned char *nonce = out;
    randombytes_buf(nonce, ABIS_NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + ABIS_NONCE_BYTES, NULL, plain, len, ad, adlen,
                                               NULL, nonce, k->bytes);
}

abis_status abis_unseal(const abis_key *k, const unsigned char *sealed, size_t sealed_len,
                        const void *ad, size_t adlen, void *plain, abis_error *err)
{
    if (sealed_len < ABIS_SEAL_OVERHEAD)
        return abis_error_set(err, ABIS_E_CRYPTO, "sealed record is truncated (%zu bytes)",
                              sealed_len);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + ABIS_NONCE_BYTES,
                                                   sealed_len - ABIS_NONCE_BYTES, ad, adlen, sealed,
                                                   k->bytes) != 0)
        return abis_error_set(err, ABIS_E_CRYPTO,
                              "sealed record failed authentication (wrong key, swapped or "
                              "corrupted record)");
    return ABIS_OK;
}

void abis_sign_keypair(const abis_key *master, unsigned char pk[ABIS_SIGN_PK_BYTES],
                       unsigned char sk[ABIS_SIGN_SK_BYTES])
{
    abis_key seed;
    abis_key_derive(master, "abisAUDT", 1, &seed);
    crypto_sign_seed_keypair(pk, sk, seed.bytes);
    abis_key_wipe(&seed);
}

void abis_sign(const unsigned char sk[ABIS_SIGN_SK_BYTES], const void *msg, size_t len,
               unsigned char sig[ABIS_SIGNATURE_BYTES])
{
    crypto_sign_detached(sig, NULL, msg, len, sk);
}

int abis_sign_check(const unsigned char pk[ABIS_SIGN_PK_BYTES], const void *msg, size_t len,
                    const unsigned char sig[ABIS_SIGNATURE_BYTES])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

void abis_hash2(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    if (alen)
        crypto_generichash_update(&st, a, alen);
    if (blen)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, 32);
}

void abis_wipe(void *p, size_t len)
{
    if (p && len)
        sodium_memzero(p, len);
}

void abis_wipe_free(void *p, size_t len)
{
    if (p) {
        sodium_memzero(p, len);
        free(p);
    }
}

void abis_to_hex(const void *bin, size_t len, char *hex)
{
    sodium_bin2hex(hex, 2 * len + 1, bin, len);
}

int abis_from_hex(const char *hex, void *bin, size_t len)
{
    size_t got = 0;
    if (strlen(hex) != 2 * len)
        return -1;
    if (sodium_hex2bin(bin, len, hex, 2 * len, NULL, &got, NULL) != 0 || got != len)
        return -1;
    return 0;
}

void abis_keyed_hash(const abis_key *k, const void *msg, size_t len, unsigned char out[32])
{
    crypto_generichash(out, 32, msg, len, k->bytes, ABIS_KEY_BYTES);
}

int abis_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void abis_sha256(const void *msg, size_t len, unsigned char out[32])
{
    crypto_hash_sha256(out, msg, len);
}

/* The round function of the pseudonym permutation: the first 8 bytes of
 * BLAKE2b keyed by k over (tag, round, half). */
static void pseudonym_round(const abis_key *k, unsigned round, const unsigned char half[8],
                            unsigned char out[8])
{
    static const char tag[] = "abis-pseudonym-v1";
    unsigned char msg[sizeof tag - 1 + 1 + 8];
    memcpy(msg, tag, sizeof tag - 1);
    msg[sizeof tag - 1] = (unsigned char)round;
    memcpy(msg + sizeof tag, half, 8);
    crypto_generichash(out, 8, msg, sizeof msg, k->bytes, ABIS_KEY_BYTES);
}

void abis_pseudonym(const abis_key *k, const unsigned char in[16], unsigned char out[16],
                    int inverse)
{
    unsigned char l[8], r[8], f[8];
    memcpy(l, in, 8);
    memcpy(r, in + 8, 8);
    for (unsigned i = 0; i < ABIS_PSEUDONYM_ROUNDS; i++) {
        if (!inverse) { /* (l, r) -> (r, l ^ F_i(r)) */
            pseudonym_round(k, i, r, f);
            for (int j = 0; j < 8; j++) {
                unsigned char t = r[j];
                r[j] = (unsigned char)(l[j] ^ f[j]);
                l[j] = t;
            }
        } else { /* (l, r) -> (r ^ F_i(l), l), rounds in reverse */
            pseudonym_round(k, ABIS_PSEUDONYM_ROUNDS - 1 - i, l, f);
            for (int j = 0; j < 8; j++) {
                unsigned char t = l[j];
                l[j] = (unsigned char)(r[j] ^ f[j]);
                r[j] = t;
            }
        }
    }
    memcpy(out, l, 8);
    memcpy(out + 8, r, 8);
    sodium_memzero(f, sizeof f);
}
