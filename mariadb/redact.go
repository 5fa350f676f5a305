package mariadb

import (
	"regexp"
	"strings"
)

// Redacted replaces a secret in what the manager shows.
const Redacted = "********"

// secretStatement matches the statements whose string literals may be secrets: account
// statements (IDENTIFIED BY / VIA ... USING / WITH ... AS, SET PASSWORD, PASSWORD()),
// CHANGE MASTER's MASTER_PASSWORD, and the encryption functions' keys.
var secretStatement = regexp.MustCompile(`(?i)identified|password|encrypt|decrypt|encode\s*\(|decode\s*\(|\bdes_|\baes_`)

// RedactSQL hides the string literals of a statement that may carry a secret (a
// processlist's INFO). Every literal of such a statement is replaced, rather than only
// the one after IDENTIFIED BY: the forms are many (IDENTIFIED VIA a USING 'x' OR b USING
// PASSWORD('y'), SET PASSWORD FOR u = 'h', MASTER_PASSWORD = "p", AES_ENCRYPT(c, 'k')),
// and the server truncates the text, so a parser of each form would miss one; hiding a
// host name or a comment of such a statement costs nothing. An unterminated literal (the
// text was cut) is hidden to the end. Other statements are returned unchanged.
func RedactSQL(q string) string {
	if !secretStatement.MatchString(q) {
		return q
	}
	var b strings.Builder
	for i := 0; i < len(q); {
		c := q[i]
		if c == '`' { // a quoted identifier: copied as is, its quotes may enclose ' or "
			j := strings.IndexByte(q[i+1:], '`')
			if j < 0 {
				b.WriteString(q[i:])
				break
			}
			b.WriteString(q[i : i+j+2])
			i += j + 2
			continue
		}
		if c != '\'' && c != '"' {
			b.WriteByte(c)
			i++
			continue
		}
		b.WriteByte(c)
		b.WriteString(Redacted)
		end := literalEnd(q, i)
		if end < 0 { // cut by the server: hide the rest
			break
		}
		b.WriteByte(c)
		i = end + 1
	}
	return b.String()
}

// literalEnd returns the index of the quote closing the literal opened at q[start], or -1.
// A backslash escapes the next byte and a doubled quote is one quote, as in MariaDB's
// default sql_mode.
func literalEnd(q string, start int) int {
	quote := q[start]
	for i := start + 1; i < len(q); i++ {
		switch q[i] {
		case '\\':
			i++
		case quote:
			if i+1 < len(q) && q[i+1] == quote {
				i++
				continue
			}
			return i
		}
	}
	return -1
}

// secretVariableWords are parts of the names of variables whose value may be a secret:
// wsrep_sst_auth ("user:password"), hashicorp_key_management_token,
// file_key_management_filekey (the key file's key), plugins' *_password and *_secret.
// "key" alone is not one: key_buffer_size, ssl_key (a path the file system protects),
// innodb_encryption_rotate_key_age and the like are settings an operator needs to read.
var secretVariableWords = []string{"password", "passwd", "secret", "token", "_auth", "filekey", "credential", "private_key", "access_key"}

// SecretVariable reports a server variable whose value must not be shown.
func SecretVariable(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretVariableWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactVariable returns the value to show for a variable: Redacted for a set secret, the
// value otherwise (an empty secret stays empty: "not set" is worth knowing).
func RedactVariable(name, value string) string {
	if value != "" && SecretVariable(name) {
		return Redacted
	}
	return value
}
