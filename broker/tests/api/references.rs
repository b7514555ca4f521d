//! The database keeps direct targets, assignments and assignment history pointing at agents and
//! stacks that exist, whatever writes them: row-level foreign keys on SQLite, statement-level
//! checks on PostgreSQL (migration 0016, which made bulk assignment four times cheaper there).

use serde_json::json;

use crate::helpers::*;

/// Whether `result` is the database refusing a dangling reference.
fn refused(result: Result<(), sqlx::Error>) -> bool {
    match result {
        Err(sqlx::Error::Database(e)) => e.is_foreign_key_violation(),
        _ => false,
    }
}

both_backends!(assignment_rows_name_existing_agents_and_stacks, |app| {
    let (agent, agent_pak) = app.create_agent("edge", json!({})).await;
    let (_, generator) = app.create_generator("ci").await;
    let stack = app
        .create_published_stack(&generator, json!({ "name": "web" }))
        .await;
    app.target(&app.admin, agent, stack).await;

    let dangling: [&'static str; 6] = [
        // A stack id where the agent goes, then an agent id where the stack goes.
        "INSERT INTO agent_targets (agent_id, stack_id, created_at) \
         SELECT stack_id, stack_id, created_at FROM agent_targets",
        "INSERT INTO agent_targets (agent_id, stack_id, created_at) \
         SELECT agent_id, agent_id, created_at FROM agent_targets",
        "INSERT INTO assignments (agent_id, stack_id, rules, updated_at) \
         SELECT stack_id, stack_id, rules, updated_at FROM assignments",
        "INSERT INTO assignments (agent_id, stack_id, rules, updated_at) \
         SELECT agent_id, agent_id, rules, updated_at FROM assignments",
        "INSERT INTO assignment_history (agent_id, stack_id, first_assigned_at) \
         SELECT stack_id, stack_id, first_assigned_at FROM assignment_history",
        "INSERT INTO assignment_history (agent_id, stack_id, first_assigned_at) \
         SELECT agent_id, agent_id, first_assigned_at FROM assignment_history",
    ];
    for sql in dangling {
        assert!(refused(app.execute_sql(sql).await), "accepted: {sql}");
    }
    let moved = app
        .execute_sql("UPDATE assignments SET agent_id = stack_id")
        .await;
    assert!(refused(moved), "a row's agent was changed to a missing one");
    for sql in [
        "DELETE FROM agents WHERE id IN (SELECT agent_id FROM assignments)",
        "DELETE FROM stacks WHERE id IN (SELECT stack_id FROM assignments)",
    ] {
        assert!(refused(app.execute_sql(sql).await), "deleted: {sql}");
    }

    // The agent still holds the stack, and valid rows are still written.
    assert_eq!(
        app.targeted_stacks(agent, &agent_pak).await,
        [stack.to_string()]
    );
    let (other, other_pak) = app.create_agent("core", json!({})).await;
    app.target(&app.admin, other, stack).await;
    assert_eq!(
        app.targeted_stacks(other, &other_pak).await,
        [stack.to_string()]
    );
});
