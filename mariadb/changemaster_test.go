package mariadb

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/ipv6"
)

func hp(host string, port int) ipv6.HostPort { return ipv6.HostPort{Host: host, Port: port} }

func TestChangeMasterSQL(t *testing.T) {
	base := ChangeMasterOptions{Host: hp("db1", 3306), User: "repl", Password: "secret"}
	const tail = ", MASTER_DELAY=0, MASTER_SSL=0"
	tests := []struct {
		name string
		mod  func(o *ChangeMasterOptions)
		want string
	}{
		{"defaults", func(o *ChangeMasterOptions) {},
			"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"channel", func(o *ChangeMasterOptions) { o.Channel = "src2" },
			"CHANGE MASTER 'src2' TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"channel injection", func(o *ChangeMasterOptions) { o.Channel = "x' TO MASTER_HOST='evil" },
			"CHANGE MASTER 'x'' TO MASTER_HOST=''evil' TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"ipv6 bracketed", func(o *ChangeMasterOptions) { o.Host = hp("[::1]", 3307) },
			"CHANGE MASTER TO MASTER_HOST='::1', MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"ipv6 zone", func(o *ChangeMasterOptions) { o.Host = hp("fe80::1%eth0", 3306) },
			"CHANGE MASTER TO MASTER_HOST='fe80::1%eth0', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"ipv6 ula", func(o *ChangeMasterOptions) { o.Host = hp("fd00:5eed::2", 3306) },
			"CHANGE MASTER TO MASTER_HOST='fd00:5eed::2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"quote in password", func(o *ChangeMasterOptions) { o.Password = "pass'word" },
			"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='pass''word', MASTER_USE_GTID=slave_pos" + tail},
		{"injection in password", func(o *ChangeMasterOptions) { o.Password = `x', MASTER_HOST='evil` },
			`CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='x'', MASTER_HOST=''evil', MASTER_USE_GTID=slave_pos` + tail},
		{"backslash escapes the quote", func(o *ChangeMasterOptions) { o.Password = `a\' b\` },
			`CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='a\\'' b\\', MASTER_USE_GTID=slave_pos` + tail},
		{"control chars", func(o *ChangeMasterOptions) { o.Password = "a\x00b\nc\x1a" },
			`CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='a\0b\nc\Z', MASTER_USE_GTID=slave_pos` + tail},
		{"quote in user", func(o *ChangeMasterOptions) { o.User = "o'brien" },
			"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='o''brien', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos" + tail},
		{"current_pos upper case", func(o *ChangeMasterOptions) { o.UseGTID = "CURRENT_POS" },
			"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=current_pos" + tail},
		{"all options", func(o *ChangeMasterOptions) {
			o.ConnectRetry, o.HeartbeatPeriod, o.Delay, o.SSL, o.DemoteToSlave = 5*time.Second, 1500*time.Millisecond, time.Hour, true, true
		}, "CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5, MASTER_HEARTBEAT_PERIOD=1.5, MASTER_DELAY=3600, MASTER_SSL=1, MASTER_DEMOTE_TO_SLAVE=1"},
		{"positional", func(o *ChangeMasterOptions) { o.UseGTID, o.LogFile, o.LogPos = GTIDNo, "mariadb-bin.000007", 1234 },
			"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='secret', MASTER_LOG_FILE='mariadb-bin.000007', MASTER_LOG_POS=1234, MASTER_USE_GTID=no" + tail},
		{"empty password", func(o *ChangeMasterOptions) { o.Password = "" },
			"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos" + tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mod(&o)
			got, err := o.SQL()
			if err != nil {
				t.Fatalf("SQL() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("SQL()\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestChangeMasterSQLRejects(t *testing.T) {
	const pw = "Sup3r'Secret\\pw"
	base := ChangeMasterOptions{Host: hp("db1", 3306), User: "repl", Password: pw}
	tests := []struct {
		name string
		mod  func(o *ChangeMasterOptions)
		want string // substring of the error
	}{
		{"empty host", func(o *ChangeMasterOptions) { o.Host.Host = "" }, "empty master host"},
		{"blank host", func(o *ChangeMasterOptions) { o.Host.Host = "  " }, "empty master host"},
		{"quote in host", func(o *ChangeMasterOptions) { o.Host.Host = "db1', MASTER_USER='root" }, "master host"},
		{"space in host", func(o *ChangeMasterOptions) { o.Host.Host = "db 1" }, "master host"},
		{"long host", func(o *ChangeMasterOptions) { o.Host.Host = strings.Repeat("a", 256) }, "longer than"},
		{"port 0", func(o *ChangeMasterOptions) { o.Host.Port = 0 }, "port 0 out of range"},
		{"port 65536", func(o *ChangeMasterOptions) { o.Host.Port = 65536 }, "out of range"},
		{"empty user", func(o *ChangeMasterOptions) { o.User = "" }, "empty replication user"},
		{"bad gtid mode", func(o *ChangeMasterOptions) { o.UseGTID = "slave_pos, MASTER_HOST='x'" }, "MASTER_USE_GTID"},
		{"channel too long", func(o *ChangeMasterOptions) { o.Channel = strings.Repeat("c", 65) }, "longer than 64"},
		{"channel control char", func(o *ChangeMasterOptions) { o.Channel = "a\nb" }, "control character"},
		{"log pos with gtid", func(o *ChangeMasterOptions) { o.LogFile = "bin.000001" }, "MASTER_USE_GTID=no"},
		{"bad log file", func(o *ChangeMasterOptions) { o.UseGTID, o.LogFile = GTIDNo, "../x" }, "master log file"},
		{"sub-second retry", func(o *ChangeMasterOptions) { o.ConnectRetry = time.Millisecond }, "connect retry"},
		{"negative heartbeat", func(o *ChangeMasterOptions) { o.HeartbeatPeriod = -time.Second }, "heartbeat"},
		{"negative delay", func(o *ChangeMasterOptions) { o.Delay = -time.Second }, "delay"},
		{"password too long", func(o *ChangeMasterOptions) { o.Password = strings.Repeat(pw, 30) }, "password longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mod(&o)
			q, err := o.SQL()
			if err == nil {
				t.Fatalf("SQL() accepted: %s", q)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestChangeMasterStringHidesPassword(t *testing.T) {
	o := ChangeMasterOptions{Channel: "c", Host: hp("::1", 3306), User: "repl", Password: "TopSecret"}
	if s := o.String(); strings.Contains(s, "TopSecret") || !strings.Contains(s, "[::1]:3306") {
		t.Errorf("String() = %q", s)
	}
}

func TestRedactError(t *testing.T) {
	pw := `p'w\x`
	err := &mysql.MySQLError{Number: 1064, Message: `syntax error near 'p''w\\x', MASTER_USE_GTID'`}
	got := redactError(err, pw)
	if strings.Contains(got.Error(), `p''w`) || !strings.Contains(got.Error(), "<redacted>") {
		t.Errorf("not redacted: %v", got)
	}
	var me *mysql.MySQLError
	if !errors.As(got, &me) || me.Number != 1064 {
		t.Errorf("error number lost: %#v", got)
	}
	plain := errors.New("connection refused")
	if redactError(plain, pw) != plain {
		t.Error("unrelated error rewritten")
	}
	if redactError(errors.New("bad secret here"), "secret").Error() != "bad <redacted> here" {
		t.Error("raw secret not redacted")
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in                  string
		major, minor, patch int
		mariadb             bool
	}{
		{"10.11.19-MariaDB-0+deb12u1-log", 10, 11, 19, true},
		{"11.4.2-MariaDB", 11, 4, 2, true},
		{"8.0.36", 8, 0, 36, false},
		{"5.7.44-log", 5, 7, 44, false},
		{"10.6", 10, 6, 0, false},
		{"garbage", 0, 0, 0, false},
	}
	for _, tt := range tests {
		v := ParseVersion(tt.in)
		if v.Major != tt.major || v.Minor != tt.minor || v.Patch != tt.patch || v.MariaDB != tt.mariadb {
			t.Errorf("ParseVersion(%q) = %+v", tt.in, v)
		}
	}
	v := ParseVersion("10.11.19-MariaDB")
	for _, c := range []struct {
		a, b, c int
		want    bool
	}{{10, 11, 19, true}, {10, 11, 20, false}, {10, 10, 99, true}, {11, 0, 0, false}, {9, 99, 99, true}} {
		if got := v.AtLeast(c.a, c.b, c.c); got != c.want {
			t.Errorf("%v.AtLeast(%d,%d,%d) = %v", v, c.a, c.b, c.c, got)
		}
	}
}

func TestReplicationSetByName(t *testing.T) {
	var r Replication
	cols := map[string]sql.NullString{
		"Connection_name":           {String: "src2", Valid: true},
		"Master_Host":               {String: "::1", Valid: true},
		"Master_Port":               {String: "3307", Valid: true},
		"Slave_IO_Running":          {String: "Connecting", Valid: true},
		"Slave_SQL_Running":         {String: "Yes", Valid: true},
		"Seconds_Behind_Master":     {},
		"Gtid_IO_Pos":               {String: "0-1-5,1-2-7", Valid: true},
		"Slave_received_heartbeats": {String: "42", Valid: true},
		"Slave_heartbeat_period":    {String: "1.500", Valid: true},
		"Master_Server_Id":          {String: "4294967295", Valid: true},
		"SQL_Remaining_Delay":       {String: "12", Valid: true},
		"Some_Future_Column":        {String: "whatever", Valid: true},
	}
	for c, v := range cols {
		if err := r.set(c, v); err != nil {
			t.Fatalf("set %s: %v", c, err)
		}
	}
	if r.ConnectionName != "src2" || r.MasterHost != "::1" || r.MasterPort != 3307 || r.SlaveIORunning != ThreadConnecting ||
		!r.SQLRunning() || r.IORunning() || r.SecondsBehindMaster != nil || r.GtidIOPos.String() != "0-1-5,1-2-7" ||
		r.SlaveReceivedHeartbeats != 42 || r.SlaveHeartbeatPeriod != 1500*time.Millisecond || r.MasterServerID != 4294967295 ||
		r.SQLRemainingDelay == nil || *r.SQLRemainingDelay != 12 {
		t.Errorf("decoded %+v", r)
	}
	if err := r.set("Master_Port", sql.NullString{String: "x", Valid: true}); err == nil {
		t.Error("bad number accepted")
	}
	if err := r.set("Gtid_IO_Pos", sql.NullString{String: "0-1", Valid: true}); err == nil {
		t.Error("bad gtid accepted")
	}
}

func TestValidateChannelAndQuote(t *testing.T) {
	if err := ValidateChannel(""); err != nil {
		t.Error(err)
	}
	if c, _ := channelClause("a'b\\"); c != ` 'a''b\\'` {
		t.Errorf("channelClause = %s", c)
	}
}

func TestWatchIsNotAClientWrite(t *testing.T) {
	for info, want := range map[string]bool{
		"DO SLEEP(5) " + watchMark: false,
		"INSERT INTO t VALUES (1)": true,
		"select 1":                 false,
		"DO SLEEP(5)":              true, // a client's own statement: waited for like any other
	} {
		if got := (Thread{Command: "Query", User: "app", Info: info}).IsClientWrite(); got != want {
			t.Errorf("%q: IsClientWrite %v, want %v", info, got, want)
		}
	}
}
