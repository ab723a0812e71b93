"""The OCI test signing key: the public draft-cavage "Test" RSA key that OCI's
request-signing documentation and SDK tests use (RSA 1024, PKCS#1 PEM), with
the tenancy and user OCIDs of OCI's published test values.

The published test values give the fingerprint 20:3b:97:...; that string does
not belong to this key. OCI identifies a key by the MD5 fingerprint of its
DER public key, so the stand-in expects the key's real fingerprint
(TEST_FINGERPRINT). TEST_VECTOR_FINGERPRINT is kept for signing-string tests
that reproduce the published signatures byte for byte."""

TEST_TENANCY = ("ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx3"
                "2uzr4h25vqstifsfdsq")
TEST_USER = ("ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgd"
             "aqedqw3rynjq")
TEST_COMPARTMENT = ("ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjs"
                    "nog7mlr6rtdb25gilchfeyjxa")
TEST_VECTOR_FINGERPRINT = "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"
TEST_FINGERPRINT = "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7"

TEST_PRIVATE_KEY_PEM = """\
-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
"""


def test_key_id():
    """The keyId a request signed with the test key carries."""
    return "%s/%s/%s" % (TEST_TENANCY, TEST_USER, TEST_FINGERPRINT)


def write_oci_config(directory, region="us-ashburn-1", profile="DEFAULT"):
    """Writes the test key and an OCI config file naming it into directory;
    returns the config file's path."""
    import os
    key_path = os.path.join(directory, "oci_api_key.pem")
    with open(key_path, "w") as f:
        f.write(TEST_PRIVATE_KEY_PEM)
    os.chmod(key_path, 0o600)
    cfg_path = os.path.join(directory, "oci_config")
    with open(cfg_path, "w") as f:
        f.write("[%s]\nuser=%s\nfingerprint=%s\nkey_file=%s\ntenancy=%s\n"
                "region=%s\n" % (profile, TEST_USER, TEST_FINGERPRINT,
                                 key_path, TEST_TENANCY, region))
    os.chmod(cfg_path, 0o600)
    return cfg_path
