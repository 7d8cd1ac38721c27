// What the daemon checks and prepares in the database before it streams, over an ordinary SQL
// connection: that every rule's table and template columns exist and what the table's REPLICA
// IDENTITY lets the stream name; that the publication exists and holds the rule tables
// (creating or extending it when source.manage_publication is on); that the slot exists with
// plugin pgoutput in this database (creating it when missing) and no other consumer holds it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "control/invalidate/config.hh"

namespace cachet::invalidate {

// libpq parameters for conninfo: defaults first (connect_timeout 10 s, application_name), then
// the operator's string, then `replication=database` for the stream's connection.
PGconn* connect_db(const std::string& conninfo, bool replication);

struct CatalogReport {
  std::vector<std::string> problems;  // config errors (a missing table or column, ...): logged
  std::vector<std::string> warnings;  // what the replica identity cannot name, ...: logged
  bool slot_created = false;
};

// Runs the checks; false (with *error) when streaming cannot start: the database cannot be
// reached, the slot is held by another consumer or uses another plugin or database, or the
// publication is missing and cannot be created.
bool prepare_catalog(const Config& config, CatalogReport* report, std::string* error);

// The message of a failed connection or result, on one line.
std::string pg_error(PGconn* conn);

}  // namespace cachet::invalidate
