// Package tenant manages the databases tenants request on a cluster (SlapOS shared
// instances): a database and an account per reference, created once on the master and
// replicated, tracked in the product's own schema, kept in step in the proxies, and the
// connection URLs published for IPv6 and IPv4. See docs/tenants.md.
package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"replication-manager-pro/mariadb"
)

// MaxReference is the longest reference accepted.
const MaxReference = 64

// MaxUser is the longest user name a tenant gets: MySQL's limit, which every client and
// proxy accepts (MariaDB allows 80).
const MaxUser = 32

// MaxPassword is the longest password accepted, in bytes.
const MaxPassword = 256

var (
	referenceRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// The references whose names need no suffix (see Names): SlapOS' own form
	// (SOFTINST-1234) and plain lower-case words.
	slaposForm = regexp.MustCompile(`^[A-Z]+-[0-9]+$`)
	wordForm   = regexp.MustCompile(`^[a-z]+$`)
)

// reservedNames are references refused outright: MariaDB's system schemas and users, the
// product's schemas, and names a tenant must not look like.
var reservedNames = map[string]bool{
	"mysql": true, "sys": true, "performance_schema": true, "information_schema": true,
	mariadb.TenantSchema: true, "repman_slave_definition": true, "root": true, "mariadb_sys": true,
	"public": true, "test": true, "repman": true, "repman_job": true, "admin": true, "proxysql": true,
}

// ValidateReference checks a reference: 1 to 64 characters, ASCII letters, digits, '_' and
// '-', starting with a letter or a digit, and not a reserved name (compared in lower case,
// '-' as '_').
func ValidateReference(ref string) error {
	if ref == "" {
		return fmt.Errorf("empty")
	}
	if !utf8.ValidString(ref) {
		return fmt.Errorf("not valid UTF-8")
	}
	if n := utf8.RuneCountInString(ref); n > MaxReference {
		return fmt.Errorf("%d characters, at most %d", n, MaxReference)
	}
	if !referenceRe.MatchString(ref) {
		return fmt.Errorf("want ASCII letters, digits, '_' and '-', starting with a letter or a digit")
	}
	if reservedNames[strings.ReplaceAll(strings.ToLower(ref), "-", "_")] {
		return fmt.Errorf("%q is a reserved name", ref)
	}
	return nil
}

// Names are the MariaDB names of a tenant.
type Names struct {
	Database string
	User     string
}

// NamesFor derives a reference's database and user names (the reference must be valid):
//
//   - base names as SlapOS derives them: database "db_" + the reference in lower case with
//     '-' as '_'; user: the reference in lower case without '_' and '-';
//   - these plain names are used for references of SlapOS' form (upper-case letters, '-',
//     digits: SOFTINST-1234 -> db_softinst_1234, softinst1234) and for lower-case words
//     (wordpress -> db_wordpress, wordpress), when they fit MariaDB's limits;
//   - every other reference gets a suffix "_x" + 12 hexadecimal digits of the SHA-256 of
//     the reference on both names (base names cut to fit 64 and 32 characters):
//     my-db -> db_my_db_x1c2f..., mydb_x1c2f...
//
// Plain names of the two forms never meet (a word has no digit and no '_'), and a suffixed
// name never equals a plain one (it ends with "_x" and hexadecimal digits, which neither form
// can produce), so two references never share a name short of a 48-bit hash collision,
// which the tracking table refuses anyway. The rule needs no state: the manager and
// `slapos render` derive the same names.
func NamesFor(ref string) Names {
	lower := strings.ToLower(ref)
	db := "db_" + strings.ReplaceAll(lower, "-", "_")
	user := strings.NewReplacer("-", "", "_", "").Replace(lower)
	plain := slaposForm.MatchString(ref) || wordForm.MatchString(ref)
	if plain && len(db) <= mariadb.MaxDatabaseName && len(user) <= MaxUser {
		return Names{Database: db, User: user}
	}
	sum := sha256.Sum256([]byte(ref))
	suffix := "_x" + hex.EncodeToString(sum[:])[:12]
	return Names{
		Database: cut(db, mariadb.MaxDatabaseName-len(suffix)) + suffix,
		User:     cut(user, MaxUser-len(suffix)) + suffix,
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Charsets are the db_charset values accepted (SlapOS' shared-instance schema): character
// sets, and collations that imply their character set.
var Charsets = []string{
	"latin1", "latin2", "latin5", "latin7", "ascii", "utf8", "utf8mb4", "utf16", "utf16le", "utf32", "binary",
	"utf8_general_ci", "utf8_unicode_ci", "utf8mb4_bin", "utf8mb4_general_ci", "utf8mb4_unicode_ci",
	"latin1_general_ci", "latin1_bin", "ascii_general_ci", "ascii_bin",
}

// DefaultCharset is the character set of a database requested without db_charset.
const DefaultCharset = "utf8mb4"

// CharsetOf maps a db_charset value to a character set and a collation ("" for the
// character set's default): "utf8mb4_bin" -> utf8mb4, utf8mb4_bin. "" is DefaultCharset.
func CharsetOf(v string) (charset, collation string, err error) {
	if v == "" {
		return DefaultCharset, "", nil
	}
	for _, c := range Charsets {
		if c != v {
			continue
		}
		if cs, _, ok := strings.Cut(v, "_"); ok {
			return cs, v, nil
		}
		return v, "", nil
	}
	return "", "", fmt.Errorf("%q is not one of %s", shorten(v), strings.Join(Charsets, ", "))
}

// ValidatePassword checks a requested password: valid UTF-8, at most MaxPassword bytes,
// no control character. Quotes, backslashes and any other printable character are fine:
// the password never enters an SQL statement (accounts are created from its hash).
func ValidatePassword(p string) error {
	if !utf8.ValidString(p) {
		return fmt.Errorf("not valid UTF-8")
	}
	if len(p) > MaxPassword {
		return fmt.Errorf("%d bytes, at most %d", len(p), MaxPassword)
	}
	for i, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character at byte %d", i)
		}
	}
	return nil
}

// shorten quotes at most 40 bytes of a value for an error message.
func shorten(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}
