/* Where the prebuilt addon's own OpenSSL finds the system's CA certificates.
 * Main thread only (reads the environment). */
#ifndef CA_BUNDLE_H
#define CA_BUNDLE_H

#include <mongoc/mongoc.h>

/* Gives a TLS URI that names no CA file the first system bundle that exists,
 * when this build carries its own OpenSSL and the environment names none
 * (SSL_CERT_FILE, SSL_CERT_DIR). Otherwise leaves the URI as it is. */
void aav_ca_bundle_apply(mongoc_uri_t *uri);

#endif
