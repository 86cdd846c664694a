//! The command DAG (petgraph), built from the record's edges.
