-- Direct targets, assignments and assignment history name an existing agent and stack, as
-- before, but a statement now checks the rows it inserted in one set-based query instead of one
-- foreign-key lookup (and row lock) per row. Writing 10,000 assignments spent three quarters of
-- each insert in those per-row checks. Agents and stacks are never deleted by the broker (they
-- are marked deleted), but a deletion that would leave such a row dangling is still refused.
-- SQLite keeps its row-level foreign keys: there a check is an index probe in the same process.

ALTER TABLE agent_targets DROP CONSTRAINT agent_targets_agent_id_fkey;
ALTER TABLE agent_targets DROP CONSTRAINT agent_targets_stack_id_fkey;
ALTER TABLE assignments DROP CONSTRAINT assignments_agent_id_fkey;
ALTER TABLE assignments DROP CONSTRAINT assignments_stack_id_fkey;
ALTER TABLE assignment_history DROP CONSTRAINT assignment_history_agent_id_fkey;
ALTER TABLE assignment_history DROP CONSTRAINT assignment_history_stack_id_fkey;

-- The rows a statement inserted (`added`, a transition table) must name existing agents and
-- stacks.
CREATE FUNCTION brokkr_check_added_pairs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing RECORD;
BEGIN
    SELECT n.agent_id, n.stack_id INTO missing
    FROM added n
    WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = n.agent_id)
       OR NOT EXISTS (SELECT 1 FROM stacks s WHERE s.id = n.stack_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert into % names a missing agent or stack (agent %, stack %)',
            TG_TABLE_NAME, missing.agent_id, missing.stack_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER agent_targets_references AFTER INSERT ON agent_targets
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION brokkr_check_added_pairs();
CREATE TRIGGER assignments_references AFTER INSERT ON assignments
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION brokkr_check_added_pairs();
CREATE TRIGGER assignment_history_references AFTER INSERT ON assignment_history
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION brokkr_check_added_pairs();

-- The key columns of those rows never change; changing one is refused rather than checked.
CREATE FUNCTION brokkr_refuse_pair_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the agent and stack of a row in % do not change', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation';
END $$;

CREATE TRIGGER agent_targets_pair_fixed BEFORE UPDATE OF agent_id, stack_id ON agent_targets
    FOR EACH ROW WHEN (OLD.agent_id IS DISTINCT FROM NEW.agent_id
                       OR OLD.stack_id IS DISTINCT FROM NEW.stack_id)
    EXECUTE FUNCTION brokkr_refuse_pair_change();
CREATE TRIGGER assignments_pair_fixed BEFORE UPDATE OF agent_id, stack_id ON assignments
    FOR EACH ROW WHEN (OLD.agent_id IS DISTINCT FROM NEW.agent_id
                       OR OLD.stack_id IS DISTINCT FROM NEW.stack_id)
    EXECUTE FUNCTION brokkr_refuse_pair_change();
CREATE TRIGGER assignment_history_pair_fixed BEFORE UPDATE OF agent_id, stack_id
    ON assignment_history
    FOR EACH ROW WHEN (OLD.agent_id IS DISTINCT FROM NEW.agent_id
                       OR OLD.stack_id IS DISTINCT FROM NEW.stack_id)
    EXECUTE FUNCTION brokkr_refuse_pair_change();

-- An agent or stack still named by one of those rows is not deleted.
CREATE FUNCTION brokkr_refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    column_name TEXT := CASE TG_TABLE_NAME WHEN 'agents' THEN 'agent_id' ELSE 'stack_id' END;
    named BOOLEAN;
BEGIN
    EXECUTE format(
        'SELECT EXISTS (SELECT 1 FROM agent_targets WHERE %1$I = $1)
             OR EXISTS (SELECT 1 FROM assignments WHERE %1$I = $1)
             OR EXISTS (SELECT 1 FROM assignment_history WHERE %1$I = $1)',
        column_name)
    INTO named USING OLD.id;
    IF named THEN
        RAISE EXCEPTION '% % is still assigned', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER agents_still_assigned BEFORE DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION brokkr_refuse_referenced_delete();
CREATE TRIGGER stacks_still_assigned BEFORE DELETE ON stacks
    FOR EACH ROW EXECUTE FUNCTION brokkr_refuse_referenced_delete();
