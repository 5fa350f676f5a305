package tenant

import (
	"math/rand"
	"net/url"
	"strings"
	"testing"

	"replication-manager-pro/mariadb"
)

func TestNamesFor(t *testing.T) {
	for _, c := range []struct{ ref, db, user string }{
		{"SOFTINST-1234", "db_softinst_1234", "softinst1234"},
		{"SLAVE-0", "db_slave_0", "slave0"},
		{"wordpress", "db_wordpress", "wordpress"},
		// Outside the two plain forms: suffixed with the reference's hash.
		{"softinst-1234", "db_softinst_1234_x" + hash12("softinst-1234"), "softinst1234_x" + hash12("softinst-1234")},
		{"my-db", "db_my_db_x" + hash12("my-db"), "mydb_x" + hash12("my-db")},
		{"my_db", "db_my_db_x" + hash12("my_db"), "mydb_x" + hash12("my_db")},
		{"WordPress", "db_wordpress_x" + hash12("WordPress"), "wordpress_x" + hash12("WordPress")},
		{"blog1", "db_blog1_x" + hash12("blog1"), "blog1_x" + hash12("blog1")},
	} {
		n := NamesFor(c.ref)
		if n.Database != c.db || n.User != c.user {
			t.Errorf("NamesFor(%q) = %s, %s; want %s, %s", c.ref, n.Database, n.User, c.db, c.user)
		}
	}
}

func hash12(ref string) string {
	n := NamesFor(ref)
	return n.User[strings.LastIndex(n.User, "_x")+2:]
}

// Names stay within MariaDB's limits and the tenant alphabet, and no two references share
// a database or a user name: references chosen to collide under SlapOS' rule (case, '-'
// against '_', separators dropped from the user name, long common prefixes) and random ones.
func TestNamesAreUniqueAndFit(t *testing.T) {
	refs := []string{
		"SOFTINST-12", "SOFTINST1-2", "softinst-12", "SOFTINST_12", "softinst12", "SOFTINST-1-2", "SoftInst-12",
		"a-b", "a_b", "ab", "AB", "a--b", "a__b", "axb", "a-bx", "ab-",
		"wordpress", "WORDPRESS", "word-press", "word_press", "wordpress1", "WORDPRESS-1",
		strings.Repeat("A", 60) + "-1", strings.Repeat("A", 61) + "-1", strings.Repeat("a", 64), strings.Repeat("a", 63) + "b",
		strings.Repeat("LONGNAME", 7) + "-12345678", strings.Repeat("LONGNAME", 7) + "-12345679",
	}
	r := rand.New(rand.NewSource(1))
	const alpha = "ABab01_-"
	for i := 0; i < 20000; i++ {
		b := make([]byte, 1+r.Intn(12))
		for j := range b {
			b[j] = alpha[r.Intn(len(alpha))]
		}
		if b[0] == '_' || b[0] == '-' {
			b[0] = 'a'
		}
		refs = append(refs, string(b))
	}
	dbs, users := map[string]string{}, map[string]string{}
	for _, ref := range refs {
		if ValidateReference(ref) != nil {
			continue
		}
		n := NamesFor(ref)
		if err := mariadb.ValidTenantName("database", n.Database, mariadb.MaxDatabaseName); err != nil {
			t.Fatalf("%q: %v", ref, err)
		}
		if err := mariadb.ValidTenantName("user", n.User, MaxUser); err != nil {
			t.Fatalf("%q: %v", ref, err)
		}
		if other, ok := dbs[n.Database]; ok && other != ref {
			t.Fatalf("%q and %q share database %s", ref, other, n.Database)
		}
		if other, ok := users[n.User]; ok && other != ref {
			t.Fatalf("%q and %q share user %s", ref, other, n.User)
		}
		dbs[n.Database], users[n.User] = ref, ref
	}
	if len(dbs) < 1000 {
		t.Fatalf("only %d distinct references checked", len(dbs))
	}
}

func TestValidateReference(t *testing.T) {
	for _, ok := range []string{"SOFTINST-1", "a", "0", "my_db-1", strings.Repeat("x", 64)} {
		if err := ValidateReference(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "x'; DROP DATABASE mysql; --", "../../x", "..", "a/b", "a.b", "a b", "a`b", "a\\b", "a'b", `a"b`, "a\x00b", "a\nb",
		strings.Repeat("x", 65), strings.Repeat("x", 300), "café", "日本", "ａｂ", "-a", "_a",
		"mysql", "MYSQL", "sys", "performance_schema", "performance-schema", "information_schema", "replication_manager_schema",
		"root", "Root", "repman_slave_definition", "\xff\xfe",
	} {
		if err := ValidateReference(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCharsetOf(t *testing.T) {
	for _, c := range []struct{ in, cs, coll string }{
		{"", "utf8mb4", ""}, {"utf8mb4", "utf8mb4", ""}, {"latin1", "latin1", ""}, {"utf16le", "utf16le", ""}, {"binary", "binary", ""},
		{"utf8mb4_bin", "utf8mb4", "utf8mb4_bin"}, {"utf8_general_ci", "utf8", "utf8_general_ci"}, {"ascii_bin", "ascii", "ascii_bin"},
		{"latin1_general_ci", "latin1", "latin1_general_ci"},
	} {
		cs, coll, err := CharsetOf(c.in)
		if err != nil || cs != c.cs || coll != c.coll {
			t.Errorf("CharsetOf(%q) = %q, %q, %v; want %q, %q", c.in, cs, coll, err, c.cs, c.coll)
		}
	}
	for _, bad := range []string{"utf8mb4; DROP DATABASE x", "UTF8MB4", "koi8r", "utf8mb4_0900_ai_ci", " utf8mb4"} {
		if _, _, err := CharsetOf(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, ok := range []string{"", "p", `it's a "quote" \ and \\ backslashes`, "émoji 🔑", "x'); DROP USER root; --", strings.Repeat("p", MaxPassword)} {
		if err := ValidatePassword(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"a\x00b", "a\nb", "\x7f", "\xff", strings.Repeat("p", MaxPassword+1)} {
		if err := ValidatePassword(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRequestValidateNamesTheField(t *testing.T) {
	f := false
	for _, c := range []struct {
		r     Request
		field string
	}{
		{Request{Reference: "x'; DROP DATABASE mysql; --"}, "reference"},
		{Request{Reference: "ok", Charset: "klingon"}, "db_charset"},
		{Request{Reference: "ok", Password: "a\x00"}, "db_password"},
	} {
		_, err := c.r.Validate()
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != c.field {
			t.Errorf("%+v: error %v, want a FieldError on %s", c.r, err, c.field)
		}
		if ok && strings.Contains(fe.Error(), "\x00") {
			t.Errorf("error echoes the password: %q", fe.Error())
		}
	}
	s, err := Request{Reference: "ok", RequireSSL: &f}.Validate()
	if err != nil || s.RequireSSL {
		t.Fatalf("require_ssl false: %+v %v", s, err)
	}
	s, _ = Request{Reference: "ok"}.Validate()
	if !s.RequireSSL {
		t.Fatal("require_ssl defaults to false")
	}
	if _, err := ValidateAll([]Request{{Reference: "a"}, {Reference: "b"}, {Reference: "a"}}); err == nil || !strings.Contains(err.Error(), "databases[2].reference") {
		t.Fatalf("duplicate reference: %v", err)
	}
}

func TestSealer(t *testing.T) {
	dir := t.TempDir()
	s1, err := LoadOrCreateSealer(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoadOrCreateSealer(dir) // the same key, read back
	if err != nil {
		t.Fatal(err)
	}
	pw := `q'uo"te\back`
	sealed, err := s1.Seal("c1", "REF-1", pw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), pw) {
		t.Fatal("sealed value holds the password")
	}
	if got, err := s2.Open("C1", "REF-1", sealed); err != nil || got != pw {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s2.Open("c1", "REF-2", sealed); err == nil {
		t.Fatal("a sealed password opened for another reference")
	}
	other, _ := LoadOrCreateSealer(t.TempDir())
	if _, err := other.Open("c1", "REF-1", sealed); err == nil {
		t.Fatal("a sealed password opened with another key")
	}
}

func TestPublishEncodesThePassword(t *testing.T) {
	e := Endpoints{Proxy: "proxysql", IPv6: "2001:db8::5", IPv4: "10.0.0.5", Port: 7032}
	pw := `p@ss:w/o'rd"\%?#[]`
	p := Publish("c1", Names{Database: "db_x", User: "x"}, pw, true, e)
	for _, c := range []struct{ raw, host string }{{p.URL, "[2001:db8::5]:7032"}, {p.URLv4, "10.0.0.5:7032"}} {
		u, err := url.Parse(c.raw)
		if err != nil {
			t.Fatalf("%s: %v", c.raw, err)
		}
		got, _ := u.User.Password()
		if u.Scheme != "mysql" || u.User.Username() != "x" || got != pw || u.Host != c.host || u.Path != "/db_x" {
			t.Fatalf("%s parses as %s %s %q %s %s", c.raw, u.Scheme, u.User.Username(), got, u.Host, u.Path)
		}
	}
	if p := Publish("c1", Names{Database: "db_x", User: "x"}, pw, true, Endpoints{}); p.URL != "" || p.URLv4 != "" {
		t.Fatalf("no proxy, yet URLs: %+v", p)
	}
}

// FuzzReference: whatever the input, a reference is either refused or gives names in the
// tenant alphabet within MariaDB's limits, and a request's error never echoes its password.
func FuzzReference(f *testing.F) {
	for _, s := range []string{"SOFTINST-1", "wordpress", "a-b", "x'; DROP DATABASE mysql; --", "../../x", strings.Repeat("x", 300), "ünï", "mysql", "a`b", "A_b-C"} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, ref, pw string) {
		if err := ValidateReference(ref); err != nil {
			return
		}
		n := NamesFor(ref)
		if mariadb.ValidTenantName("database", n.Database, mariadb.MaxDatabaseName) != nil || mariadb.ValidTenantName("user", n.User, MaxUser) != nil {
			t.Fatalf("%q: names %+v", ref, n)
		}
		if NamesFor(ref) != n {
			t.Fatal("not deterministic")
		}
		if _, err := (Request{Reference: ref, Password: pw}).Validate(); err != nil && len(pw) > 3 && strings.Contains(err.Error(), pw) {
			t.Fatalf("error echoes the password: %v", err)
		}
	})
}
