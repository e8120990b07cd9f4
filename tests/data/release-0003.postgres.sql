CREATE SCHEMA relink_release_0003;
CREATE FUNCTION relink_release_0003.relink_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$;
CREATE FUNCTION relink_release_0003.relink_audit_head_forward() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN RAISE EXCEPTION 'audit_head only moves forward'; END $$;
CREATE TABLE relink_release_0003.alembic_version (
    version_num character varying(32) NOT NULL
);
CREATE TABLE relink_release_0003.audit_entry (
    seq bigint NOT NULL,
    recorded_at character varying(32) NOT NULL,
    workflow_id bigint,
    workflow character varying(100) NOT NULL,
    workflow_version integer NOT NULL,
    company_id bigint,
    project_id bigint,
    invoice_id bigint,
    erp_bill_id character varying(100),
    actor_id bigint,
    actor_login character varying(255),
    actor_name character varying(255),
    action character varying(50) NOT NULL,
    from_state character varying(50),
    to_state character varying(50),
    outcome character varying(20) NOT NULL,
    message text NOT NULL,
    reason text,
    evidence text NOT NULL,
    prev_hash character varying(64) NOT NULL,
    hash character varying(64) NOT NULL
);
CREATE TABLE relink_release_0003.audit_head (
    id integer NOT NULL,
    log_id character varying(64) NOT NULL,
    seq bigint NOT NULL,
    hash character varying(64) NOT NULL,
    canonical_from bigint DEFAULT '1'::bigint NOT NULL
);
CREATE TABLE relink_release_0003.workflow (
    id bigint NOT NULL,
    workflow character varying(100) NOT NULL,
    version integer NOT NULL,
    state character varying(50) NOT NULL,
    revision integer NOT NULL,
    company_id bigint NOT NULL,
    project_id bigint NOT NULL,
    invoice_id bigint NOT NULL,
    open_invoice_id bigint,
    erp character varying(50) NOT NULL,
    erp_key character varying(20) NOT NULL,
    erp_bill_id character varying(100),
    reason text,
    snapshot text NOT NULL,
    new_invoice_id bigint,
    after text,
    in_flight_step character varying(50),
    in_flight_to character varying(50),
    in_flight_key character varying(64),
    in_flight_since character varying(32),
    in_flight_data text,
    created_at character varying(32) NOT NULL,
    updated_at character varying(32) NOT NULL,
    in_flight_owner character varying(255),
    in_flight_host character varying(255),
    in_flight_pid integer,
    in_flight_lease_until character varying(32)
);
CREATE SEQUENCE relink_release_0003.workflow_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE relink_release_0003.workflow_id_seq OWNED BY relink_release_0003.workflow.id;
ALTER TABLE ONLY relink_release_0003.workflow ALTER COLUMN id SET DEFAULT nextval('relink_release_0003.workflow_id_seq'::regclass);
INSERT INTO relink_release_0003.alembic_version VALUES ('0003');
INSERT INTO relink_release_0003.audit_entry VALUES (1, '2026-12-06T17:26:32.426288Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'start', NULL, 'Exported', 'succeeded', 'Started correction of invoice 9001 (INV-1001).', 'Wrong invoice number', '{"before":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:00:00Z","deletable":true,"erp_status":"synced","final":false,"id":9001,"invoice_number":"INV-1001","items":[{"description":"Structural steel, January 2026 progress","id":900101,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":1,"origin_data":"QuickBooks Online bill 183","origin_id":"183","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-02T15:00:00Z","vendor_name":"Ironclad Steel"},"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000002","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000003","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000004","status":200,"system":"procore"}],"permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}', '0000000000000000000000000000000000000000000000000000000000000000', 'cc408e374cce3c3ac4fb0a51e2023b39dd974fa4aa8198c144fd298a47d2464d');
INSERT INTO relink_release_0003.audit_entry VALUES (2, '2026-12-06T17:26:33.417191Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'unlink', 'Exported', 'Exported', 'refused', 'The requisition is still in QuickBooks Online. Please delete it before retrying.', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000005","status":200,"system":"procore"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000006","status":200,"system":"qbo"}],"erp_bill":{"id":"183","status":"Open"}}', 'cc408e374cce3c3ac4fb0a51e2023b39dd974fa4aa8198c144fd298a47d2464d', '0bfb5168f7155ca48b29c0e225c86d48bac6ae9548ff4caa3d12f6d061567830');
INSERT INTO relink_release_0003.audit_entry VALUES (3, '2026-12-06T17:26:34.614947Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'delete-in-erp', 'Exported', 'Exported', 'in_flight', 'delete-in-erp in flight.', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000007","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000008","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?company_id=4021","request_id":"sandbox-00000009","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/companies/4021/me","request_id":"sandbox-00000010","status":200,"system":"procore"}],"idempotency_key":"6fa83fc70fbf466c8a56c8cb0c9ae397","lease_until":"2026-12-06T17:27:34.610727Z","owner":"ana@summit.example on vm (pid 29245)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}', '0bfb5168f7155ca48b29c0e225c86d48bac6ae9548ff4caa3d12f6d061567830', '3cd890eadc9f86bf08d34a58a080385b9f5d7002850a05e77bd96ec4e9e7676b');
INSERT INTO relink_release_0003.audit_entry VALUES (4, '2026-12-06T17:26:34.628398Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'delete-in-erp', 'Exported', 'DeletedInERP', 'succeeded', 'Deleted bill 183 in QuickBooks Online.', NULL, '{"calls":[{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000011","status":200,"system":"qbo"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000012","status":200,"system":"qbo"},{"method":"POST","path":"/v3/company/9130357/bill?operation=delete&requestid=6fa83fc70fbf466c8a56c8cb0c9ae397","request_id":"sandbox-00000013","status":200,"system":"qbo"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000014","status":400,"system":"qbo"}],"erp_bill":{"id":"183","status":"gone"},"idempotency_key":"6fa83fc70fbf466c8a56c8cb0c9ae397","lease_until":"2026-12-06T17:27:34.610727Z","owner":"ana@summit.example on vm (pid 29245)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}', '3cd890eadc9f86bf08d34a58a080385b9f5d7002850a05e77bd96ec4e9e7676b', '0f7c4992e4dfba4d45adc0d131e7063f4fd9837efc64260e114eeb817f360d81');
INSERT INTO relink_release_0003.audit_entry VALUES (5, '2026-12-06T17:26:35.793857Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'unlink', 'DeletedInERP', 'DeletedInERP', 'in_flight', 'unlink in flight.', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000015","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000016","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?company_id=4021","request_id":"sandbox-00000017","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/companies/4021/me","request_id":"sandbox-00000018","status":200,"system":"procore"}],"idempotency_key":"dbd5a1599ebe407ab3c35faf6425b0cd","lease_until":"2026-12-06T17:27:35.784695Z","owner":"ana@summit.example on vm (pid 29247)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}', '0f7c4992e4dfba4d45adc0d131e7063f4fd9837efc64260e114eeb817f360d81', '83621fb0028a2ad382d4c18774127edc0e5b648b6dff0bab1149d27fcab3c904');
INSERT INTO relink_release_0003.audit_entry VALUES (6, '2026-12-06T17:26:35.810550Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'unlink', 'DeletedInERP', 'Unlinked', 'succeeded', 'Successfully Unlinked', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000020","status":200,"system":"procore"},{"method":"PATCH","path":"/rest/v1.0/companies/4021/external_data/sync","request_id":"sandbox-00000021","status":200,"system":"procore"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000019","status":400,"system":"qbo"}],"erp_bill":{"id":"183","status":"gone"},"idempotency_key":"dbd5a1599ebe407ab3c35faf6425b0cd","lease_until":"2026-12-06T17:27:35.784695Z","origin_id":"183","owner":"ana@summit.example on vm (pid 29247)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}', '83621fb0028a2ad382d4c18774127edc0e5b648b6dff0bab1149d27fcab3c904', '3561588f5cd1f8a9c9837fe65d53f2df27bc049d24f9c9f208d6f4aa0351adba');
INSERT INTO relink_release_0003.audit_entry VALUES (7, '2026-12-06T17:26:36.815872Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'delete-in-procore', 'Unlinked', 'Unlinked', 'in_flight', 'delete-in-procore in flight.', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000022","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000023","status":200,"system":"procore"}],"idempotency_key":"0a00ff595d8349e08d3e4f430123ffd7","lease_until":"2026-12-06T17:27:36.811354Z","owner":"ana@summit.example on vm (pid 29251)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}', '3561588f5cd1f8a9c9837fe65d53f2df27bc049d24f9c9f208d6f4aa0351adba', '55e47b98ad2b160ac24d5f26f566d426e040e0501472bec0aaa7cf56c2cade51');
INSERT INTO relink_release_0003.audit_entry VALUES (8, '2026-12-06T17:26:36.826293Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'delete-in-procore', 'Unlinked', 'DeletedInProcore', 'succeeded', 'Deleted invoice 9001 in Procore.', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000024","status":200,"system":"procore"},{"method":"DELETE","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000025","status":200,"system":"procore"}],"idempotency_key":"0a00ff595d8349e08d3e4f430123ffd7","lease_until":"2026-12-06T17:27:36.811354Z","owner":"ana@summit.example on vm (pid 29251)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}', '55e47b98ad2b160ac24d5f26f566d426e040e0501472bec0aaa7cf56c2cade51', '3ffff602614d6aa667dd0c34eedf86f0632441a0a91ac0d0bcdc08c7d39c131c');
INSERT INTO relink_release_0003.audit_entry VALUES (9, '2026-12-06T17:26:37.920267Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'reenter', 'DeletedInProcore', 'DeletedInProcore', 'in_flight', 'reenter in flight.', NULL, '{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000026","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000027","status":200,"system":"procore"}],"idempotency_key":"172af494cf9d4a05ae041da076eca3ec","lease_until":"2026-12-06T17:27:37.915996Z","owner":"ana@summit.example on vm (pid 29253)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Standard","Admin"],"erp_integrations":[]}}', '3ffff602614d6aa667dd0c34eedf86f0632441a0a91ac0d0bcdc08c7d39c131c', '6c25d9c0f4ff5b8a754a62b0e4fa6dc99477051e27593e7c3bc8cefca634c834');
INSERT INTO relink_release_0003.audit_entry VALUES (10, '2026-12-06T17:26:37.933028Z', 1, 'subcontractor-invoice', 1, 4021, 101, 9001, '183', 7001, 'ana@summit.example', 'Ana Alvarez', 'reenter', 'DeletedInProcore', 'Reentered', 'succeeded', 'Re-entered invoice 9001 as 9900000000 (INV-1001-C).', NULL, '{"after":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-03T09:00:04Z","deletable":true,"erp_status":null,"final":false,"id":9900000000,"invoice_number":"INV-1001-C","items":[{"description":"Structural steel, January 2026 progress","id":9950000000,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":6,"origin_data":null,"origin_id":null,"period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-03T09:00:04Z","vendor_name":"Ironclad Steel"},"before":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:00:00Z","deletable":true,"erp_status":"synced","final":false,"id":9001,"invoice_number":"INV-1001","items":[{"description":"Structural steel, January 2026 progress","id":900101,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":1,"origin_data":"QuickBooks Online bill 183","origin_id":"183","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-02T15:00:00Z","vendor_name":"Ironclad Steel"},"calls":[{"method":"GET","path":"/rest/v1.1/requisitions?project_id=101&per_page=100&filters[commitment_id]=5501&filters[invoice_number]=INV-1001-C&page=1","request_id":"sandbox-00000028","status":200,"system":"procore"},{"method":"POST","path":"/rest/v1.1/requisitions","request_id":"sandbox-00000029","status":201,"system":"procore"}],"corrected":{"invoice_number":"INV-1001-C"},"idempotency_key":"172af494cf9d4a05ae041da076eca3ec","lease_until":"2026-12-06T17:27:37.915996Z","owner":"ana@summit.example on vm (pid 29253)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Standard","Admin"],"erp_integrations":[]}}', '6c25d9c0f4ff5b8a754a62b0e4fa6dc99477051e27593e7c3bc8cefca634c834', 'e4c5919072ed22cba0b8160b69fcd1d25cddaae3618a21ed9c457a46819f95c9');
INSERT INTO relink_release_0003.audit_entry VALUES (11, '2026-12-06T17:26:38.811902Z', 2, 'subcontractor-invoice', 1, 4021, 101, 9002, '184', 7001, 'ana@summit.example', 'Ana Alvarez', 'start', NULL, 'Exported', 'succeeded', 'Started correction of invoice 9002 (INV-1002).', 'Open correction left by the release', '{"before":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:01:00Z","deletable":true,"erp_status":"synced","final":false,"id":9002,"invoice_number":"INV-1002","items":[{"description":"Structural steel, January 2026 progress","id":900201,"materials_presently_stored":"0.00","work_completed_this_period":"8400.00"}],"number":2,"origin_data":"QuickBooks Online bill 184","origin_id":"184","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"8400.00","updated_at":"2026-02-02T15:01:00Z","vendor_name":"Ironclad Steel"},"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000030","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000031","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/requisitions/9002?project_id=101","request_id":"sandbox-00000032","status":200,"system":"procore"}],"permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}', 'e4c5919072ed22cba0b8160b69fcd1d25cddaae3618a21ed9c457a46819f95c9', '242d32ac60799ad02c3ce4ba033813f57d1eac08363d8cd7cd04e619d1fce505');
INSERT INTO relink_release_0003.audit_head VALUES (1, '2ade856b7390b80b7636d41ab78eaaa2', 11, '242d32ac60799ad02c3ce4ba033813f57d1eac08363d8cd7cd04e619d1fce505', 1);
INSERT INTO relink_release_0003.workflow VALUES (1, 'subcontractor-invoice', 1, 'Reentered', 9, 4021, 101, 9001, NULL, 'QuickBooks Online', 'qbo', '183', 'Wrong invoice number', '{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:00:00Z","deletable":true,"erp_status":"synced","final":false,"id":9001,"invoice_number":"INV-1001","items":[{"description":"Structural steel, January 2026 progress","id":900101,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":1,"origin_data":"QuickBooks Online bill 183","origin_id":"183","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-02T15:00:00Z","vendor_name":"Ironclad Steel"}', 9900000000, '{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-03T09:00:04Z","deletable":true,"erp_status":null,"final":false,"id":9900000000,"invoice_number":"INV-1001-C","items":[{"description":"Structural steel, January 2026 progress","id":9950000000,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":6,"origin_data":null,"origin_id":null,"period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-03T09:00:04Z","vendor_name":"Ironclad Steel"}', NULL, NULL, NULL, NULL, NULL, '2026-12-06T17:26:32.420548Z', '2026-12-06T17:26:37.929746Z', NULL, NULL, NULL, NULL);
INSERT INTO relink_release_0003.workflow VALUES (2, 'subcontractor-invoice', 1, 'Exported', 1, 4021, 101, 9002, 9002, 'QuickBooks Online', 'qbo', '184', 'Open correction left by the release', '{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:01:00Z","deletable":true,"erp_status":"synced","final":false,"id":9002,"invoice_number":"INV-1002","items":[{"description":"Structural steel, January 2026 progress","id":900201,"materials_presently_stored":"0.00","work_completed_this_period":"8400.00"}],"number":2,"origin_data":"QuickBooks Online bill 184","origin_id":"184","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"8400.00","updated_at":"2026-02-02T15:01:00Z","vendor_name":"Ironclad Steel"}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2026-12-06T17:26:38.806683Z', '2026-12-06T17:26:38.806683Z', NULL, NULL, NULL, NULL);
SELECT pg_catalog.setval('relink_release_0003.workflow_id_seq', 2, true);
ALTER TABLE ONLY relink_release_0003.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);
ALTER TABLE ONLY relink_release_0003.audit_entry
    ADD CONSTRAINT audit_entry_pkey PRIMARY KEY (seq);
ALTER TABLE ONLY relink_release_0003.audit_head
    ADD CONSTRAINT audit_head_pkey PRIMARY KEY (id);
ALTER TABLE ONLY relink_release_0003.workflow
    ADD CONSTRAINT uq_workflow_open_invoice UNIQUE (company_id, open_invoice_id);
ALTER TABLE ONLY relink_release_0003.workflow
    ADD CONSTRAINT workflow_pkey PRIMARY KEY (id);
CREATE INDEX ix_audit_actor_seq ON relink_release_0003.audit_entry USING btree (actor_login, seq);
CREATE INDEX ix_audit_invoice_seq ON relink_release_0003.audit_entry USING btree (invoice_id, seq);
CREATE INDEX ix_audit_project_seq ON relink_release_0003.audit_entry USING btree (project_id, seq);
CREATE INDEX ix_audit_recorded_at ON relink_release_0003.audit_entry USING btree (recorded_at);
CREATE INDEX ix_audit_workflow_seq ON relink_release_0003.audit_entry USING btree (workflow_id, seq);
CREATE INDEX ix_workflow_invoice ON relink_release_0003.workflow USING btree (invoice_id);
CREATE INDEX ix_workflow_project ON relink_release_0003.workflow USING btree (project_id);
CREATE INDEX ix_workflow_state ON relink_release_0003.workflow USING btree (state);
CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON relink_release_0003.audit_entry FOR EACH STATEMENT EXECUTE FUNCTION relink_release_0003.relink_audit_append_only();
CREATE TRIGGER audit_entry_no_update_delete BEFORE DELETE OR UPDATE ON relink_release_0003.audit_entry FOR EACH ROW EXECUTE FUNCTION relink_release_0003.relink_audit_append_only();
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON relink_release_0003.audit_head FOR EACH ROW WHEN (((new.id IS DISTINCT FROM old.id) OR ((new.log_id)::text IS DISTINCT FROM (old.log_id)::text) OR (new.canonical_from IS DISTINCT FROM old.canonical_from) OR (new.seq < old.seq))) EXECUTE FUNCTION relink_release_0003.relink_audit_head_forward();
CREATE TRIGGER audit_head_no_insert_delete BEFORE INSERT OR DELETE ON relink_release_0003.audit_head FOR EACH ROW EXECUTE FUNCTION relink_release_0003.relink_audit_head_forward();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON relink_release_0003.audit_head FOR EACH STATEMENT EXECUTE FUNCTION relink_release_0003.relink_audit_head_forward();
