package proxysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Tenant users: the accounts of the databases tenants requested (package tenant). They are
// written into mysql_users with a comment marking them, TenantMarker(cluster), so that a
// later sync knows which rows it owns: rows so marked and no longer wanted are deleted,
// rows of other origins (the cnf's users, the master's accounts copied by the user sync)
// are never touched unless named in remove.

// TenantUser is one tenant account as ProxySQL needs it.
type TenantUser struct {
	Username     string
	PasswordHash string // mysql_native_password hash ("*" + 40 hex digits)
	// UseSSL makes ProxySQL refuse the user's clients that do not speak TLS (mysql_users.use_ssl).
	UseSSL bool
}

// String names the user without its hash.
func (u TenantUser) String() string { return u.Username }

// GoString keeps %#v free of the hash.
func (u TenantUser) GoString() string { return u.Username }

// TenantMarker is the mysql_users comment of a cluster's tenant users.
func TenantMarker(cluster string) string { return "rmp-tenant:" + strings.ToLower(cluster) }

// userRow is the part of a mysql_users row the tenant sync compares.
type userRow struct {
	password  string
	hostgroup int
	useSSL    bool
	comment   string
}

func (a *Admin) userRows(ctx context.Context) (map[string]userRow, error) {
	out := map[string]userRow{}
	err := a.query(ctx, "read mysql_users", "SELECT username, password, default_hostgroup, use_ssl, comment FROM mysql_users", 5, func(v []sql.NullString) error {
		hg, err := atoi(v[2])
		if err != nil {
			return err
		}
		ssl, err := atoi(v[3])
		if err != nil {
			return err
		}
		out[v[0].String] = userRow{password: v[1].String, hostgroup: hg, useSSL: ssl == 1, comment: v[4].String}
		return nil
	})
	return out, err
}

// DeleteUser removes a user from mysql_users (every row of that name).
func (a *Admin) DeleteUser(ctx context.Context, username string) error {
	name, err := Quote(username)
	if err != nil {
		return fmt.Errorf("proxysql %s: delete user: username: %w", a.addr, err)
	}
	return a.exec(ctx, "delete user "+username, "DELETE FROM mysql_users WHERE username = "+name, "")
}

func (a *Admin) replaceTenantUser(ctx context.Context, u TenantUser, hostgroup int, marker string) error {
	name, err := Quote(u.Username)
	if err != nil {
		return fmt.Errorf("proxysql %s: write user: username: %w", a.addr, err)
	}
	if !nativeHash.MatchString(u.PasswordHash) {
		return fmt.Errorf("proxysql %s: write user %s: not a mysql_native_password hash", a.addr, u.Username)
	}
	comment, err := Quote(marker)
	if err != nil {
		return fmt.Errorf("proxysql %s: write user %s: comment: %w", a.addr, u.Username, err)
	}
	stmt := fmt.Sprintf("REPLACE INTO mysql_users (username, password, default_hostgroup, use_ssl, comment) VALUES (%s, '%s', %d, %d, %s)",
		name, u.PasswordHash, hostgroup, b2i(u.UseSSL), comment)
	return a.exec(ctx, "write user "+u.Username, stmt, u.PasswordHash)
}

// SyncTenantUsers makes the tenant users of mysql_users exactly want: each wanted user
// present with its hash, use_ssl, the writer hostgroup and marker as comment; rows carrying
// marker that are not wanted, and the users named in remove, deleted. LOAD MYSQL USERS TO
// RUNTIME (and SAVE ... TO DISK with save) follow only a change. It returns the number of
// rows written or deleted.
func (a *Admin) SyncTenantUsers(ctx context.Context, marker string, hostgroup int, want []TenantUser, remove []string, save bool) (int, error) {
	have, err := a.userRows(ctx)
	if err != nil {
		return 0, err
	}
	wanted := map[string]bool{}
	sort.Slice(want, func(i, j int) bool { return want[i].Username < want[j].Username })
	var errs []error
	changed := 0
	for _, u := range want {
		wanted[u.Username] = true
		if r, ok := have[u.Username]; ok && r.password == u.PasswordHash && r.hostgroup == hostgroup && r.useSSL == u.UseSSL && r.comment == marker {
			continue
		}
		if err := a.replaceTenantUser(ctx, u, hostgroup, marker); err != nil {
			errs = append(errs, err)
			continue
		}
		changed++
	}
	var drop []string
	for name, r := range have {
		if !wanted[name] && r.comment == marker {
			drop = append(drop, name)
		}
	}
	for _, name := range remove {
		if _, ok := have[name]; ok && !wanted[name] && have[name].comment != marker {
			drop = append(drop, name)
		}
	}
	sort.Strings(drop)
	for _, name := range drop {
		if err := a.DeleteUser(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		changed++
	}
	if changed > 0 {
		if err := a.LoadUsersToRuntime(ctx); err != nil {
			return changed, errors.Join(append(errs, err)...)
		}
		if save {
			if err := a.SaveUsersToDisk(ctx); err != nil {
				return changed, errors.Join(append(errs, err)...)
			}
		}
	}
	return changed, errors.Join(errs...)
}
