#include "runtime/ca_bundle.h"

#include <unistd.h>

#ifdef AAV_BUNDLED_OPENSSL
/* The prebuilt addon links Debian's static OpenSSL, whose default CA location
 * is Debian's /usr/lib/ssl. Other distributions keep their bundle elsewhere,
 * so tls=true without tlsCAFile (Atlas) would fail to verify there. These are
 * the usual places, Debian/Ubuntu/Alpine first, then RHEL/Fedora, SUSE,
 * and the BSD/macOS-style cert.pem. The source build (scripts/build-addon.js)
 * uses the system's OpenSSL, which already knows its own distribution. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
};

void aav_ca_bundle_apply(mongoc_uri_t *uri, bool env_names_ca) {
  /* OpenSSL's default verify paths honour SSL_CERT_FILE/DIR: the user chose. */
  if (env_names_ca || !mongoc_uri_get_tls(uri) ||
      mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, NULL))
    return;
  for (size_t i = 0; i < sizeof system_bundles / sizeof system_bundles[0]; i++) {
    if (access(system_bundles[i], R_OK) == 0) {
      mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, system_bundles[i]);
      return;
    }
  }
  /* None found: OpenSSL's own default (/usr/lib/ssl) is still tried. */
}
#else
void aav_ca_bundle_apply(mongoc_uri_t *uri, bool env_names_ca) {
  (void)uri;
  (void)env_names_ca;
}
#endif
