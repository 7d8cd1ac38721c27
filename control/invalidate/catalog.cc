// Catalog checks over libpq with bound parameters; identifiers in DDL are quoted by libpq.
#include "control/invalidate/catalog.hh"

#include <memory>
#include <set>

#include <fmt/format.h>

#include "common/log.hh"
#include "control/invalidate/key_template.hh"

namespace cachet::invalidate {

namespace {

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;

struct ConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnFree>;

// Runs sql with text parameters; nullptr (with *error) unless it returned rows or completed.
Result query(PGconn* c, const std::string& sql, const std::vector<std::string>& params,
             std::string* error) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  Result r(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0));
  const ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    *error = pg_error(c);
    return nullptr;
  }
  return r;
}

std::string quote_ident(PGconn* c, const std::string& s) {
  char* q = PQescapeIdentifier(c, s.data(), s.size());
  std::string out = q ? q : "\"\"";
  PQfreemem(q);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Checks one rule against the catalog; true when its table exists (it can be published).
bool check_rule(PGconn* c, const RuleConfig& rule, CatalogReport* report) {
  const std::string name = fmt::format("rule for {}.{} (line {})", rule.schema, rule.table,
                                       rule.line);
  std::string error;
  Result t = query(c,
                   "SELECT c.oid, c.relreplident, c.relkind FROM pg_class c JOIN pg_namespace n "
                   "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                   {rule.schema, rule.table}, &error);
  if (!t) {
    report->problems.push_back(fmt::format("{}: {}", name, error));
    return false;
  }
  if (PQntuples(t.get()) == 0) {
    report->problems.push_back(fmt::format("{}: table {}.{} does not exist", name, rule.schema,
                                           rule.table));
    return false;
  }
  const std::string oid = PQgetvalue(t.get(), 0, 0);
  const char ident = PQgetvalue(t.get(), 0, 1)[0];
  Result cols = query(c,
                      "SELECT a.attname, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = "
                      "a.attrelid AND a.attnum = ANY(i.indkey) AND ((i.indisprimary AND $2 = 'd') "
                      "OR (i.indisreplident AND $2 = 'i'))) FROM pg_attribute a WHERE a.attrelid "
                      "= $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                      {oid, std::string(1, ident)}, &error);
  if (!cols) {
    report->problems.push_back(fmt::format("{}: {}", name, error));
    return true;
  }
  std::set<std::string> columns, identity;
  std::vector<std::string> listed;
  for (int i = 0; i < PQntuples(cols.get()); ++i) {
    columns.insert(PQgetvalue(cols.get(), i, 0));
    listed.push_back(PQgetvalue(cols.get(), i, 0));
    if (ident == 'f' || PQgetvalue(cols.get(), i, 1)[0] == 't')
      identity.insert(PQgetvalue(cols.get(), i, 0));
  }
  if (ident == 'n' || identity.empty())
    report->warnings.push_back(fmt::format(
        "{}: the table has no replica identity (REPLICA IDENTITY {}): PostgreSQL refuses UPDATE "
        "and DELETE on a published table without one; give it a primary key or run ALTER TABLE "
        "{}.{} REPLICA IDENTITY FULL", name, ident == 'n' ? "NOTHING" : "DEFAULT without a "
        "primary key", quote_ident(c, rule.schema), quote_ident(c, rule.table)));
  for (const std::string& text : rule.keys) {
    KeyTemplate tpl;
    if (!KeyTemplate::parse(text, &tpl, &error)) continue;
    std::vector<std::string> outside;
    for (const std::string& f : tpl.fields()) {
      if (!columns.count(f)) {
        report->problems.push_back(fmt::format(
            "{}: key template '{}' names column '{}', which the table does not have (columns: "
            "{}); keys from this template cannot be named", name, text, f, join(listed)));
      } else if (!identity.count(f)) {
        outside.push_back(f);
      }
    }
    if (!outside.empty() && ident != 'f')
      report->warnings.push_back(fmt::format(
          "{}: key template '{}' uses {} outside the replica identity ({}): the old row's key of "
          "an UPDATE or DELETE cannot be named (counted in keys_unresolved); ALTER TABLE {}.{} "
          "REPLICA IDENTITY FULL sends the whole old row", name, text, join(outside),
          identity.empty() ? std::string("none") : join({identity.begin(), identity.end()}),
          quote_ident(c, rule.schema), quote_ident(c, rule.table)));
  }
  return true;
}

bool prepare_publication(PGconn* c, const Config& config, const std::vector<const RuleConfig*>& tables,
                         std::string* error) {
  const std::string pub = quote_ident(c, config.source_publication);
  Result have = query(c, "SELECT 1 FROM pg_publication WHERE pubname = $1",
                      {config.source_publication}, error);
  if (!have) return false;
  std::vector<std::string> missing;
  if (PQntuples(have.get()) > 0) {
    Result in = query(c, "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname "
                      "= $1", {config.source_publication}, error);
    if (!in) return false;
    std::set<std::pair<std::string, std::string>> published;
    for (int i = 0; i < PQntuples(in.get()); ++i)
      published.emplace(PQgetvalue(in.get(), i, 0), PQgetvalue(in.get(), i, 1));
    for (const RuleConfig* r : tables)
      if (!published.count({r->schema, r->table}))
        missing.push_back(quote_ident(c, r->schema) + "." + quote_ident(c, r->table));
    if (missing.empty()) return true;
    if (!config.source_manage_publication) {
      common::log::error("publication {} lacks {}: their changes are not streamed "
                         "(source.manage_publication is off)", config.source_publication,
                         join(missing));
      return true;
    }
    if (!query(c, fmt::format("ALTER PUBLICATION {} ADD TABLE {}", pub, join(missing)), {}, error))
      return false;
    common::log::info("publication {}: added {}", config.source_publication, join(missing));
    return true;
  }
  if (!config.source_manage_publication) {
    *error = fmt::format("publication {} does not exist (create it, or turn "
                         "source.manage_publication on)", config.source_publication);
    return false;
  }
  for (const RuleConfig* r : tables)
    missing.push_back(quote_ident(c, r->schema) + "." + quote_ident(c, r->table));
  const std::string sql = missing.empty()
                              ? fmt::format("CREATE PUBLICATION {}", pub)
                              : fmt::format("CREATE PUBLICATION {} FOR TABLE {}", pub, join(missing));
  if (!query(c, sql, {}, error)) return false;
  common::log::info("created publication {} ({})", config.source_publication,
                    missing.empty() ? std::string("no tables: key messages only") : join(missing));
  return true;
}

bool prepare_slot(PGconn* c, const Config& config, CatalogReport* report, std::string* error) {
  Result s = query(c,
                   "SELECT plugin, active_pid, database = current_database(), database FROM "
                   "pg_replication_slots WHERE slot_name = $1",
                   {config.source_slot}, error);
  if (!s) return false;
  if (PQntuples(s.get()) == 0) {
    Result made = query(c, "SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                        {config.source_slot}, error);
    if (!made) return false;
    common::log::info("created replication slot {} (pgoutput) at {}", config.source_slot,
                      PQgetvalue(made.get(), 0, 0));
    report->slot_created = true;
    return true;
  }
  const std::string plugin = PQgetvalue(s.get(), 0, 0);
  if (plugin != "pgoutput") {
    *error = fmt::format("replication slot {} uses plugin {}; cachet-invalidate needs pgoutput "
                         "(name another source.slot)", config.source_slot, plugin);
    return false;
  }
  if (PQgetvalue(s.get(), 0, 2)[0] != 't') {
    *error = fmt::format("replication slot {} belongs to database {}, not this one",
                         config.source_slot, PQgetvalue(s.get(), 0, 3));
    return false;
  }
  if (!PQgetisnull(s.get(), 0, 1)) {
    *error = fmt::format("replication slot {} is in use by another consumer (walsender pid {}; "
                         "pg_stat_replication names its client)",
                         config.source_slot, PQgetvalue(s.get(), 0, 1));
    return false;
  }
  return true;
}

}  // namespace

std::string pg_error(PGconn* conn) {
  std::string e = conn ? PQerrorMessage(conn) : "out of memory";
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  for (char& ch : e)
    if (ch == '\n') ch = ' ';
  return e;
}

PGconn* connect_db(const std::string& conninfo, bool replication) {
  const char* keys[] = {"connect_timeout", "application_name", "dbname", "replication", nullptr};
  const char* values[] = {"10", "cachet-invalidate", conninfo.c_str(),
                          replication ? "database" : nullptr, nullptr};
  if (!replication) keys[3] = nullptr;
  return PQconnectdbParams(keys, values, 1);
}

bool prepare_catalog(const Config& config, CatalogReport* report, std::string* error) {
  Conn c(connect_db(config.source_conninfo, false));
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    *error = fmt::format("cannot connect to the database: {}", pg_error(c.get()));
    return false;
  }
  std::vector<const RuleConfig*> tables;
  for (const RuleConfig& r : config.rules)
    if (check_rule(c.get(), r, report)) tables.push_back(&r);
  if (!prepare_publication(c.get(), config, tables, error)) {
    *error = fmt::format("publication {}: {}", config.source_publication, *error);
    return false;
  }
  return prepare_slot(c.get(), config, report, error);
}

}  // namespace cachet::invalidate
