// Package packaging holds what turns the programs into something IT
// installs: the Debian packages (linux/, built with nfpm), the Windows
// installer (windows/, NSIS, optionally Authenticode-signed) and build.sh,
// which `make package` runs. Its Go code is the tests of those packages,
// which build them for real and inspect, verify and install the results; it
// must never hold code the programs use.
package packaging
