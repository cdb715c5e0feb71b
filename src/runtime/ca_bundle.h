/* Where the prebuilt addon's own OpenSSL finds the system's CA certificates.
 * Main thread (of any environment). */
#ifndef CA_BUNDLE_H
#define CA_BUNDLE_H

#include <mongoc/mongoc.h>
#include <stdbool.h>

/* Gives a TLS URI that names no CA file the first system bundle that exists,
 * when this build carries its own OpenSSL and the environment names none
 * (`env_names_ca`: SSL_CERT_FILE or SSL_CERT_DIR is set, and OpenSSL will
 * use it). Otherwise leaves the URI as it is. */
void aav_ca_bundle_apply(mongoc_uri_t *uri, bool env_names_ca);

#endif
