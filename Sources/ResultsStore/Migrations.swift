import GRDB

/// The schema, as append-only migrations: a migration that has shipped is never edited; a change
/// is a new migration. Migrations name tables by string and use no record types, so later changes
/// to the records cannot change what an old migration does.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: machine, run, trial, metric, curve, kernel, kernel_bench") { db in
            try db.create(table: "machine") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("hostname", .text).notNull()
                t.column("cpu", .text).notNull()
                t.column("cores", .integer).notNull()
                t.column("os", .text).notNull()
                t.column("swift", .text).notNull()
                t.column("blas", .text).notNull()
                t.column("blas_core", .text).notNull()
                t.uniqueKey(["hostname", "cpu", "cores", "os", "swift", "blas", "blas_core"])
            }
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("suite", .text).notNull()
                t.column("suite_sha", .text).notNull()
                t.column("commit", .text).notNull()
                t.column("branch", .text).notNull()
                t.column("dirty", .boolean).notNull()
                t.column("machine_id", .integer).notNull().references("machine", onDelete: .restrict)
                t.column("argv", .text).notNull()
                t.column("started_at", .datetime).notNull()
                t.column("finished_at", .datetime)
                t.column("status", .text).notNull()
            }
            try db.create(table: "trial") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("dataset", .text).notNull()
                t.column("dataset_sha", .text).notNull()
                t.column("method", .text).notNull()
                t.column("method_version", .text).notNull()
                t.column("config_json", .text).notNull()
                t.column("config_sha", .text).notNull()
                t.column("train_budget", .text).notNull()
                t.column("seed", .integer).notNull()
                t.column("split_sha", .text).notNull()
                t.column("status", .text).notNull()
                t.column("error", .text)
                t.column("started_at", .datetime).notNull()
                t.column("seconds", .double)
                t.column("steps", .integer)
                t.column("samples_per_s", .double)
            }
            try db.create(table: "metric") { t in
                t.column("trial_id", .integer).notNull().indexed().references("trial", onDelete: .cascade)
                t.column("protocol", .text).notNull()
                t.column("eval_budget", .text).notNull()
                t.column("name", .text).notNull()
                t.column("value", .double).notNull()
                t.column("ci95", .double)
                t.column("n", .integer)
            }
            try db.create(table: "curve") { t in
                t.column("trial_id", .integer).notNull().indexed().references("trial", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("value", .double).notNull()
            }
            try db.create(table: "kernel") { t in
                t.column("trial_id", .integer).notNull().indexed().references("trial", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("shape", .text).notNull()
                t.column("calls", .integer).notNull()
                t.column("flops", .double).notNull()
                t.column("seconds", .double).notNull()
            }
            try db.create(table: "kernel_bench") { t in
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("shape", .text).notNull()
                t.column("unit", .text).notNull()
                t.column("reps", .integer).notNull()
                t.column("gflops_min", .double).notNull()
                t.column("gflops_median", .double).notNull()
                t.column("gflops_max", .double).notNull()
            }
        }
        m.registerMigration("v2: run_threshold, noise") { db in
            // A suite's per-metric thresholds, kept with each run so `compare` judges by them.
            try db.create(table: "run_threshold") { t in
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("metric", .text).notNull()
                t.column("value", .double).notNull()
                t.uniqueKey(["run_id", "metric"])
            }
            // The spread same-commit runs of a suite showed on a machine (`benchbench calibrate`):
            // per cell in the metric's units, per throughput as a relative change.
            try db.create(table: "noise") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("suite", .text).notNull()
                t.column("machine_id", .integer).notNull().indexed().references("machine", onDelete: .restrict)
                t.column("commit", .text).notNull()
                t.column("runs", .text).notNull()
                t.column("calibrated_at", .datetime).notNull()
                t.column("kind", .text).notNull()
                t.column("key", .text).notNull()
                t.column("spread", .double).notNull()
            }
        }
        m.registerMigration("v3: shard, trial.machine_id") { db in
            // A run that is one shard of a campaign (a suite split across machines), or, in a
            // merged database, the shards a campaign's run was merged from (one row each).
            try db.create(table: "shard") { t in
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("campaign", .text).notNull()
                t.column("shard", .integer).notNull()
                t.column("shards", .integer).notNull()
                t.column("finished", .boolean).notNull().defaults(to: false)
                t.uniqueKey(["run_id", "shard"])
            }
            // The machine a merged trial ran on, when it is not its run's.
            try db.alter(table: "trial") { t in t.add(column: "machine_id", .integer).references("machine", onDelete: .restrict) }
        }
        m.registerMigration("v4: trial.variant_of") { db in
            // A named suite entry's registered method (`trial.method` holds the entry's name).
            try db.alter(table: "trial") { t in t.add(column: "variant_of", .text) }
        }
        return m
    }
}
