-- The normalize job of the benchmark, in DuckDB: seed-000 appointments (NDJSON) into
-- `appointments` (every role pivoted into a typed column, instants in UTC, personal data
-- dropped) and `appointment_parties` (every relatedParty pair), as zstd Parquet.
-- Parameters (replaced by bench/run.sh): {input}, {out}, {threads}.
SET threads = {threads};
SET preserve_insertion_order = false;
SET TimeZone = 'UTC';

-- Role names match like opslake's pivots: lower case, no '_', '-' or spaces.
CREATE MACRO norm(r) AS lower(replace(replace(replace(r, '_', ''), '-', ''), ' ', ''));
-- ISO with a zone is an instant; without one it is Madrid wall time.
CREATE MACRO utc(t) AS CASE
    WHEN t IS NULL THEN NULL
    WHEN regexp_matches(CAST(t AS VARCHAR), '(Z|[+-]\d\d(:?\d\d)?)$') THEN CAST(CAST(t AS VARCHAR) AS TIMESTAMPTZ)
    ELSE timezone('Europe/Madrid', CAST(replace(CAST(t AS VARCHAR), 'T', ' ') AS TIMESTAMP))
END;

-- The file is read once per output table: streaming keeps DuckDB's memory small, which is
-- faster here than materializing the nested lists in a temporary table.
CREATE MACRO src() AS TABLE
    SELECT id, externalId, category, description, status, creationDate, lastUpdate,
           relatedParty, relatedEntity, relatedPlace, validFor,
           list_transform(flatten(list_transform(resourceOrderItem, lambda i: i.resource.resourceCharacteristic)),
                          lambda c: {id: c."value", role: c."name"}) AS characteristics,
           list_transform(relatedParty, lambda x: norm(x.role)) AS pr,
           list_transform(relatedEntity, lambda x: norm(x.role)) AS er,
           list_transform(flatten(list_transform(resourceOrderItem, lambda i: i.resource.resourceCharacteristic)),
                          lambda c: norm(c."name")) AS cr
    -- The columns are declared: no sampling pass, and timestamps stay text until utc().
    FROM read_json('{input}', format = 'newline_delimited', maximum_object_size = 16777216, columns = {
        id: 'VARCHAR', externalId: 'VARCHAR', category: 'VARCHAR', description: 'VARCHAR', status: 'VARCHAR',
        creationDate: 'VARCHAR', lastUpdate: 'VARCHAR',
        relatedParty: 'STRUCT(id VARCHAR, role VARCHAR)[]',
        relatedEntity: 'STRUCT(href VARCHAR, id VARCHAR, name VARCHAR, role VARCHAR)[]',
        relatedPlace: 'STRUCT(href VARCHAR, id VARCHAR, name VARCHAR, role VARCHAR)',
        resourceOrderItem: 'STRUCT(id VARCHAR, resource STRUCT(resourceCharacteristic STRUCT(name VARCHAR, value VARCHAR)[]))[]',
        validFor: 'STRUCT(endDateTime VARCHAR, startDateTime VARCHAR)'});
-- The value of the first pair of a list whose normalized role is `name`.
CREATE MACRO pick(pairs, roles, name) AS pairs[list_position(roles, name)].id;

COPY (
    SELECT
        id AS appointment_id,
        externalId AS external_id,
        category, description, status,
        utc(creationDate) AS creation_date,
        utc(lastUpdate) AS last_update,
        utc(validFor.startDateTime) AS valid_for_start,
        utc(validFor.endDateTime) AS valid_for_end,
        relatedPlace.id AS related_place_id,
        relatedPlace.href AS related_place_href,
        relatedPlace.role AS related_place_role,
        pick(relatedParty, pr, 'scoringresult') AS scoring_result,
        CAST(pick(relatedParty, pr, 'scoringlevel') AS INTEGER) AS scoring_level,
        pick(relatedParty, pr, 'sellchannel') AS sell_channel,
        pick(relatedParty, pr, 'userrole') AS user_role,
        pick(relatedParty, pr, 'usercode') AS user_code,
        pick(relatedParty, pr, 'segment') AS segment,
        pick(relatedParty, pr, 'language') AS language,
        coalesce(pick(relatedParty, pr, 'tenant'), pick(relatedParty, pr, 'tenantid')) AS tenant,
        CAST(coalesce(pick(relatedParty, pr, 'duration'), pick(relatedParty, pr, 'durationmin')) AS INTEGER) AS duration_min,
        coalesce(pick(relatedParty, pr, 'zipcode'), pick(relatedParty, pr, 'postcode')) AS zipcode,
        pick(relatedParty, pr, 'contract') AS contract,
        CAST(pick(relatedParty, pr, 'delay') AS INTEGER) AS delay,
        CAST(pick(relatedParty, pr, 'isnewappointment') AS BOOLEAN) AS is_new_appointment,
        utc(split_part(pick(relatedParty, pr, 'validforappointment'), ' - ', 1)) AS valid_for_appointment_start,
        utc(split_part(pick(relatedParty, pr, 'validforappointment'), ' - ', 2)) AS valid_for_appointment_end,
        coalesce(pick(relatedEntity, er, 'workorder'), pick(relatedEntity, er, 'workorderid')) AS work_order,
        pick(relatedEntity, er, 'ordertype') AS order_type,
        pick(relatedEntity, er, 'connectioninstallationflow') AS connection_installation_flow,
        pick(relatedEntity, er, 'donoroperator') AS donor_operator,
        pick(relatedEntity, er, 'linkstate') AS link_state,
        pick(relatedEntity, er, 'ctopoledb') AS cto_pole_db,
        pick(characteristics, cr, 'type') AS type,
        pick(characteristics, cr, 'territoryowner') AS territory_owner,
        pick(characteristics, cr, 'tariff') AS tariff
    FROM src()
) TO '{out}/appointments.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (
    SELECT appointment_id, position, role,
           -- Personal values are emptied, the row stays (as opslake's drop policy).
           CASE WHEN norm(role) IN ('firstname', 'middlename', 'lastname', 'surname', 'surnames', 'documentnumber',
                                    'documentid', 'email', 'emailaddress', 'phonenumber', 'phone', 'contactnumber')
                THEN NULL ELSE value END AS value
    FROM (
        SELECT id AS appointment_id,
               CAST(generate_subscripts(relatedParty, 1) - 1 AS INTEGER) AS position,
               unnest(relatedParty).role AS role,
               unnest(relatedParty).id AS value
        FROM read_json('{input}', format = 'newline_delimited', maximum_object_size = 16777216,
                       columns = {id: 'VARCHAR', relatedParty: 'STRUCT(id VARCHAR, role VARCHAR)[]'})
    )
) TO '{out}/appointment_parties.parquet' (FORMAT parquet, COMPRESSION zstd);
