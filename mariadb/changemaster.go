package mariadb

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/ipv6"
)

// GTIDMode is CHANGE MASTER's MASTER_USE_GTID.
type GTIDMode string

// MASTER_USE_GTID values.
const (
	GTIDSlavePos   GTIDMode = "slave_pos"
	GTIDCurrentPos GTIDMode = "current_pos"
	GTIDNo         GTIDMode = "no"
)

// ChangeMasterOptions describes a CHANGE MASTER TO. Every option is written explicitly
// (CHANGE MASTER keeps the previous value of an option it does not name, which would make
// a repointing depend on history).
type ChangeMasterOptions struct {
	Channel  string        // multi-source connection name; "" is the default connection
	Host     ipv6.HostPort // IPv6 literals are written unbracketed, zone kept
	User     string
	Password string // never logged, never in an error
	// UseGTID is MASTER_USE_GTID; "" means slave_pos.
	UseGTID GTIDMode
	// ConnectRetry is MASTER_CONNECT_RETRY in whole seconds (>= 1s); 0 leaves the default.
	ConnectRetry time.Duration
	// HeartbeatPeriod is MASTER_HEARTBEAT_PERIOD (ms resolution, <= 4294967s); 0 leaves the default.
	HeartbeatPeriod time.Duration
	// Delay is MASTER_DELAY in whole seconds (delayed replicas); always written.
	Delay time.Duration
	SSL   bool // MASTER_SSL; always written
	// DemoteToSlave adds MASTER_DEMOTE_TO_SLAVE=1 (MariaDB 10.10+): the server's own
	// binlogged GTIDs join gtid_slave_pos, for a demoted master.
	DemoteToSlave bool
	// LogFile/LogPos position a non-GTID replica (UseGTID "no" only).
	LogFile string
	LogPos  uint64
}

// Limits of CHANGE MASTER values in MariaDB 10.x.
const (
	maxHostLength     = 255
	maxUserLength     = 128
	maxPasswordLength = 255
	maxHeartbeat      = 4294967 * time.Second
	maxDelay          = 1<<31 - 1 // seconds
)

// SQL renders the statement. It validates every value, quotes strings as literals and
// never puts the password into the returned error.
func (o ChangeMasterOptions) SQL() (string, error) {
	ch, err := channelClause(o.Channel)
	if err != nil {
		return "", fmt.Errorf("change master: %w", err)
	}
	host := ipv6.Unbracket(strings.TrimSpace(o.Host.Host))
	switch {
	case host == "":
		return "", errors.New("change master: empty master host")
	case len(host) > maxHostLength:
		return "", fmt.Errorf("change master: master host longer than %d", maxHostLength)
	case !validHost(host):
		return "", fmt.Errorf("change master: master host %q: want a host name or IP address", host)
	}
	if o.Host.Port < 1 || o.Host.Port > 65535 {
		return "", fmt.Errorf("change master: master port %d out of range 1-65535", o.Host.Port)
	}
	if o.User == "" {
		return "", errors.New("change master: empty replication user")
	}
	if len(o.User) > maxUserLength {
		return "", fmt.Errorf("change master: replication user longer than %d", maxUserLength)
	}
	if len(o.Password) > maxPasswordLength {
		return "", fmt.Errorf("change master: replication password longer than %d", maxPasswordLength)
	}
	mode := o.UseGTID
	if mode == "" {
		mode = GTIDSlavePos
	}
	switch GTIDMode(strings.ToLower(string(mode))) {
	case GTIDSlavePos, GTIDCurrentPos, GTIDNo:
		mode = GTIDMode(strings.ToLower(string(mode)))
	default:
		return "", fmt.Errorf("change master: MASTER_USE_GTID %q: want slave_pos, current_pos or no", o.UseGTID)
	}
	if (o.LogFile != "" || o.LogPos != 0) && mode != GTIDNo {
		return "", fmt.Errorf("change master: log file/position need MASTER_USE_GTID=no, not %s", mode)
	}
	if o.ConnectRetry < 0 || (o.ConnectRetry > 0 && o.ConnectRetry < time.Second) {
		return "", fmt.Errorf("change master: connect retry %v: want 0 (default) or >= 1s", o.ConnectRetry)
	}
	if o.HeartbeatPeriod < 0 || o.HeartbeatPeriod > maxHeartbeat {
		return "", fmt.Errorf("change master: heartbeat period %v out of range 0-%v", o.HeartbeatPeriod, maxHeartbeat)
	}
	if o.Delay < 0 || o.Delay/time.Second > maxDelay {
		return "", fmt.Errorf("change master: delay %v out of range", o.Delay)
	}

	var b strings.Builder
	b.WriteString("CHANGE MASTER")
	b.WriteString(ch)
	b.WriteString(" TO MASTER_HOST=")
	b.WriteString(quoteString(host))
	b.WriteString(", MASTER_PORT=")
	b.WriteString(strconv.Itoa(o.Host.Port))
	b.WriteString(", MASTER_USER=")
	b.WriteString(quoteString(o.User))
	b.WriteString(", MASTER_PASSWORD=")
	b.WriteString(quoteString(o.Password))
	if mode == GTIDNo && o.LogFile != "" {
		if strings.ContainsAny(o.LogFile, "/\\\x00") || len(o.LogFile) > 255 {
			return "", fmt.Errorf("change master: master log file %q: invalid", o.LogFile)
		}
		b.WriteString(", MASTER_LOG_FILE=")
		b.WriteString(quoteString(o.LogFile))
		b.WriteString(", MASTER_LOG_POS=")
		b.WriteString(strconv.FormatUint(max(o.LogPos, 4), 10))
	}
	b.WriteString(", MASTER_USE_GTID=")
	b.WriteString(string(mode))
	if o.ConnectRetry > 0 {
		b.WriteString(", MASTER_CONNECT_RETRY=")
		b.WriteString(strconv.FormatInt(int64(o.ConnectRetry/time.Second), 10))
	}
	if o.HeartbeatPeriod > 0 {
		b.WriteString(", MASTER_HEARTBEAT_PERIOD=")
		b.WriteString(strconv.FormatFloat(o.HeartbeatPeriod.Round(time.Millisecond).Seconds(), 'f', -1, 64))
	}
	b.WriteString(", MASTER_DELAY=")
	b.WriteString(strconv.FormatInt(int64(o.Delay/time.Second), 10))
	if o.SSL {
		b.WriteString(", MASTER_SSL=1")
	} else {
		b.WriteString(", MASTER_SSL=0")
	}
	if o.DemoteToSlave {
		b.WriteString(", MASTER_DEMOTE_TO_SLAVE=1")
	}
	return b.String(), nil
}

// String describes the options without the password (for logs and events).
func (o ChangeMasterOptions) String() string {
	mode := o.UseGTID
	if mode == "" {
		mode = GTIDSlavePos
	}
	return fmt.Sprintf("CHANGE MASTER %q TO host=%s user=%s use_gtid=%s ssl=%t", o.Channel, o.Host, o.User, mode, o.SSL)
}

// validHost accepts host names, IPv4 and IPv6 literals (with a %zone): letters, digits and
// . - _ : % only.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '%':
		default:
			return false
		}
	}
	return true
}
