package proxysql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// Account is one MariaDB account as ProxySQL needs it: a user name and its
// mysql_native_password hash.
type Account struct {
	User         string
	PasswordHash string
}

// String names the account without its hash.
func (a Account) String() string { return a.User }

// GoString keeps %#v free of the hash.
func (a Account) GoString() string { return a.User }

// AccountSource reads the accounts of the master.
type AccountSource func(ctx context.Context, master ipv6.HostPort) ([]Account, error)

// MariaDBAccounts reads `SELECT user, password FROM mysql.user` on the master as user
// (db-servers-credential), one short-lived connection per call, bounded by timeout.
func MariaDBAccounts(user, password string, timeout time.Duration) AccountSource {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return func(ctx context.Context, master ipv6.HostPort) ([]Account, error) {
		s, err := mariadb.Open(master, user, password, mariadb.Options{ConnectTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxOpenConns: 1})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		rows, err := s.DB().QueryContext(ctx, "SELECT user, password FROM mysql.user")
		if err != nil {
			return nil, fmt.Errorf("read accounts of %s: %w", master, err)
		}
		defer rows.Close()
		var out []Account
		for rows.Next() {
			var a Account
			if err := rows.Scan(&a.User, &a.PasswordHash); err != nil {
				return nil, fmt.Errorf("read accounts of %s: %w", master, err)
			}
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read accounts of %s: %w", master, err)
		}
		return out, nil
	}
}

var nativeHash = regexp.MustCompile(`^\*[0-9A-Fa-f]{40}$`)

// ProxyUsers turns master accounts into mysql_users rows: accounts with a
// mysql_native_password hash only (no empty, "invalid" or other plugin's hash), one row per
// user name (MariaDB accounts are user@host, ProxySQL users are names: a name whose hosts
// carry different hashes is skipped and reported in conflicts), mariadb.sys and anonymous
// accounts skipped. Sorted by name. Pure.
func ProxyUsers(accounts []Account, defaultHostgroup int) (users []User, conflicts []string) {
	hashes := map[string]string{}
	bad := map[string]bool{}
	for _, a := range accounts {
		if a.User == "" || a.User == "mariadb.sys" || !nativeHash.MatchString(a.PasswordHash) {
			continue
		}
		if h, ok := hashes[a.User]; ok && h != a.PasswordHash {
			bad[a.User] = true
			continue
		}
		hashes[a.User] = a.PasswordHash
	}
	for u, h := range hashes {
		if bad[u] {
			conflicts = append(conflicts, u)
			continue
		}
		users = append(users, User{Username: u, Password: h, DefaultHostgroup: defaultHostgroup})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Username < users[j].Username })
	sort.Strings(conflicts)
	return users, conflicts
}

// syncUsers adds the master's users missing from mysql_users and updates those whose hash
// changed (a password rotated on the master); it never deletes (tenants' users are added by
// others). LOAD (and SAVE) follow only a change.
func (r *Router) syncUsers(ctx context.Context, s *topology.Snapshot) error {
	m, ok := s.MasterServer()
	if !ok || r.opt.Accounts == nil {
		return nil
	}
	accounts, err := r.opt.Accounts(ctx, m.Addr)
	if err != nil {
		return fmt.Errorf("user sync: %w", err)
	}
	want, conflicts := ProxyUsers(accounts, r.opt.Hostgroups.Writer)
	for _, c := range conflicts {
		r.log.WithField("user", c).Warn("user sync: accounts of this name have different passwords on the master; not copied")
	}
	have, err := r.admin.Users(ctx)
	if err != nil {
		return fmt.Errorf("user sync: %w", err)
	}
	known := map[string]string{}
	for _, u := range have {
		known[u.Username] = u.Password
	}
	var errs []error
	changed := 0
	for _, u := range want {
		if p, ok := known[u.Username]; ok && p == u.Password {
			continue
		}
		if err := r.admin.ReplaceUser(ctx, u); err != nil {
			errs = append(errs, err)
			continue
		}
		changed++
	}
	if changed > 0 {
		if err := r.admin.LoadUsersToRuntime(ctx); err != nil {
			return fmt.Errorf("user sync: %w", err)
		}
		if r.opt.SaveToDisk {
			if err := r.admin.SaveUsersToDisk(ctx); err != nil {
				return fmt.Errorf("user sync: %w", err)
			}
		}
		r.log.WithFields(logrus.Fields{"users": changed}).Info("proxysql users synced from the master")
	}
	if len(errs) == 0 {
		r.lastSync, r.lastSyncedOn = r.now(), normAddr(m.Addr)
	}
	return errors.Join(errs...)
}
