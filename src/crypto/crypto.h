/*
 * crypto.h: every cryptographic step of OpenABIS, on libsodium.
 *
 * Key hierarchy (docs/SECURITY.md):
 *   master key (32 bytes: DIR/master.key, mode 0600, or $ABIS_MASTER_KEY)
 *     -> segment key   = crypto_kdf(master, id = segment id, ctx "abisSEGK")
 *          -> wraps each subject's random data key (XChaCha20-Poly1305, AD = subject id)
 *               -> seals that subject's templates (XChaCha20-Poly1305,
 *                  AD = subject id || template id)
 *          -> snapshot key = crypto_kdf(segment key, id = modality id, ctx "abisSNAP")
 *               -> encrypts the gallery snapshot of (segment, modality)
 *     -> audit signing key = Ed25519 seed from crypto_kdf(master, 1, "abisAUDT")
 *     -> key check value   = BLAKE2b keyed by crypto_kdf(master, 1, "abisKCV_")
 *     -> API-key hash key  = crypto_kdf(master, 1, "abisAPIK"): the store keeps only
 *                            BLAKE2b(key = it, the API key), compared in constant time
 *     -> client key        = crypto_kdf(master, client id, "abisCLNT"): seals that
 *                            client's random pseudonym key (AD = client name)
 *
 * All keys are wiped with sodium_memzero when no longer needed.
 */
#ifndef ABIS_CRYPTO_H
#define ABIS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"

#define ABIS_KEY_BYTES 32
#define ABIS_NONCE_BYTES 24 /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define ABIS_TAG_BYTES 16   /* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define ABIS_SEAL_OVERHEAD (ABIS_NONCE_BYTES + ABIS_TAG_BYTES)
#define ABIS_WRAPPED_KEY_BYTES (ABIS_KEY_BYTES + ABIS_SEAL_OVERHEAD)
#define ABIS_KCV_BYTES 32
#define ABIS_SIGN_PK_BYTES 32
#define ABIS_SIGN_SK_BYTES 64
#define ABIS_SIGNATURE_BYTES 64

typedef struct abis_key {
    unsigned char bytes[ABIS_KEY_BYTES];
} abis_key;

/* sodium_init once; ABIS_E_CRYPTO if libsodium cannot start. */
abis_status abis_crypto_init(abis_error *err);

/* Fill `out` with random bytes (ids, keys, nonces). */
void abis_random_bytes(void *out, size_t len);

/* Create a new random master key file at `path` (O_EXCL, mode 0600). */
abis_status abis_master_key_create(const char *path, abis_error *err);
/* Load the master key: `hex` if not NULL, else $ABIS_MASTER_KEY (64 hex digits),
 * else the file DIR/master.key (refused when readable by group or others). */
abis_status abis_master_key_load(const char *data_dir, const char *hex, abis_key *out,
                                 abis_error *err);

/* Derive a subkey (crypto_kdf_derive_from_key): ctx is exactly 8 characters. */
void abis_key_derive(const abis_key *master, const char ctx[8], uint64_t id, abis_key *out);
void abis_key_random(abis_key *out);
void abis_key_wipe(abis_key *k);
/* Key check value: proves a master key is the store's without revealing it. */
void abis_key_check_value(const abis_key *master, unsigned char out[ABIS_KCV_BYTES]);

/* Seal `len` bytes: out gets nonce || ciphertext || tag (len + ABIS_SEAL_OVERHEAD). */
void abis_seal(const abis_key *k, const void *plain, size_t len, const void *ad, size_t adlen,
               unsigned char *out);
/* Open a sealed blob into `plain` (sealed_len - ABIS_SEAL_OVERHEAD bytes).
 * ABIS_E_CRYPTO when the key, the associated data or the bytes are wrong. */
abis_status abis_unseal(const abis_key *k, const unsigned char *sealed, size_t sealed_len,
                        const void *ad, size_t adlen, void *plain, abis_error *err);

/* Audit signing key pair derived from the master key. */
void abis_sign_keypair(const abis_key *master, unsigned char pk[ABIS_SIGN_PK_BYTES],
                       unsigned char sk[ABIS_SIGN_SK_BYTES]);
void abis_sign(const unsigned char sk[ABIS_SIGN_SK_BYTES], const void *msg, size_t len,
               unsigned char sig[ABIS_SIGNATURE_BYTES]);
/* 1 when the signature is valid. */
int abis_sign_check(const unsigned char pk[ABIS_SIGN_PK_BYTES], const void *msg, size_t len,
                    const unsigned char sig[ABIS_SIGNATURE_BYTES]);

/* BLAKE2b-256 over the concatenation of two buffers (either may be empty). */
void abis_hash2(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32]);

/* BLAKE2b-256 of `msg` keyed by `k` (crypto_generichash). */
void abis_keyed_hash(const abis_key *k, const void *msg, size_t len, unsigned char out[32]);
/* 1 when the buffers are equal; constant time in `len` (sodium_memcmp). */
int abis_equal(const void *a, const void *b, size_t len);
/* SHA-256 (crypto_hash_sha256): fingerprints of TLS client certificates. */
void abis_sha256(const void *msg, size_t len, unsigned char out[32]);

/* A client's pseudonym of a 16-byte id and back: a keyed permutation of
 * 128-bit strings, an 8-round Feistel network (Luby-Rackoff) whose round
 * function is BLAKE2b keyed by the client's pseudonym key.  Without the key
 * the pseudonyms of two clients cannot be linked; with it the engine maps a
 * pseudonym back to its id without any table.  inverse = 1 undoes it. */
#define ABIS_PSEUDONYM_ROUNDS 8
void abis_pseudonym(const abis_key *k, const unsigned char in[16], unsigned char out[16],
                    int inverse);

/* Wipe `len` bytes (sodium_memzero). */
void abis_wipe(void *p, size_t len);
/* Wipe `len` bytes (sodium_memzero) and free them: for buffers that held
 * biometric data or keys.  NULL is allowed. */
void abis_wipe_free(void *p, size_t len);

/* Hex helpers (sodium_bin2hex / sodium_hex2bin).  from_hex returns 0 when
 * `hex` is exactly 2*len hex digits, -1 otherwise. */
void abis_to_hex(const void *bin, size_t len, char *hex /* 2*len+1 */);
int abis_from_hex(const char *hex, void *bin, size_t len);

#endif
