BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0003');
CREATE TABLE audit_entry (
	seq BIGINT NOT NULL, 
	recorded_at VARCHAR(32) NOT NULL, 
	workflow_id BIGINT, 
	workflow VARCHAR(100) NOT NULL, 
	workflow_version INTEGER NOT NULL, 
	company_id BIGINT, 
	project_id BIGINT, 
	invoice_id BIGINT, 
	erp_bill_id VARCHAR(100), 
	actor_id BIGINT, 
	actor_login VARCHAR(255), 
	actor_name VARCHAR(255), 
	action VARCHAR(50) NOT NULL, 
	from_state VARCHAR(50), 
	to_state VARCHAR(50), 
	outcome VARCHAR(20) NOT NULL, 
	message TEXT NOT NULL, 
	reason TEXT, 
	evidence TEXT NOT NULL, 
	prev_hash VARCHAR(64) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (seq)
);
INSERT INTO "audit_entry" VALUES(1,'2026-12-06T17:26:16.239399Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','start',NULL,'Exported','succeeded','Started correction of invoice 9001 (INV-1001).','Wrong invoice number','{"before":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:00:00Z","deletable":true,"erp_status":"synced","final":false,"id":9001,"invoice_number":"INV-1001","items":[{"description":"Structural steel, January 2026 progress","id":900101,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":1,"origin_data":"QuickBooks Online bill 183","origin_id":"183","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-02T15:00:00Z","vendor_name":"Ironclad Steel"},"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000002","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000003","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000004","status":200,"system":"procore"}],"permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}','0000000000000000000000000000000000000000000000000000000000000000','371786d8c6dd5fe1102e9dd58c8bd3c5306aec62c5f2dbae5050d138aa47d6fd');
INSERT INTO "audit_entry" VALUES(2,'2026-12-06T17:26:17.174767Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','unlink','Exported','Exported','refused','The requisition is still in QuickBooks Online. Please delete it before retrying.',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000005","status":200,"system":"procore"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000006","status":200,"system":"qbo"}],"erp_bill":{"id":"183","status":"Open"}}','371786d8c6dd5fe1102e9dd58c8bd3c5306aec62c5f2dbae5050d138aa47d6fd','9708bc063387b1ea7656807b0ee191dc2ee3864afde1b8a26075d4d3bb408c9f');
INSERT INTO "audit_entry" VALUES(3,'2026-12-06T17:26:18.313075Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','delete-in-erp','Exported','Exported','in_flight','delete-in-erp in flight.',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000007","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000008","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?company_id=4021","request_id":"sandbox-00000009","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/companies/4021/me","request_id":"sandbox-00000010","status":200,"system":"procore"}],"idempotency_key":"564ecf2d36a94b83bc2de355d759cea0","lease_until":"2026-12-06T17:27:18.310085Z","owner":"ana@summit.example on vm (pid 29196)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}','9708bc063387b1ea7656807b0ee191dc2ee3864afde1b8a26075d4d3bb408c9f','bce891f503162faef260e2a34326885977dc4d2f5f11d8cb5af0612186288c21');
INSERT INTO "audit_entry" VALUES(4,'2026-12-06T17:26:18.324438Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','delete-in-erp','Exported','DeletedInERP','succeeded','Deleted bill 183 in QuickBooks Online.',NULL,'{"calls":[{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000011","status":200,"system":"qbo"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000012","status":200,"system":"qbo"},{"method":"POST","path":"/v3/company/9130357/bill?operation=delete&requestid=564ecf2d36a94b83bc2de355d759cea0","request_id":"sandbox-00000013","status":200,"system":"qbo"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000014","status":400,"system":"qbo"}],"erp_bill":{"id":"183","status":"gone"},"idempotency_key":"564ecf2d36a94b83bc2de355d759cea0","lease_until":"2026-12-06T17:27:18.310085Z","owner":"ana@summit.example on vm (pid 29196)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}','bce891f503162faef260e2a34326885977dc4d2f5f11d8cb5af0612186288c21','6265e88510d4e2d477c569006d6e8f75ec503d818b63b86d816a33372240dd9b');
INSERT INTO "audit_entry" VALUES(5,'2026-12-06T17:26:19.203986Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','unlink','DeletedInERP','DeletedInERP','in_flight','unlink in flight.',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000015","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000016","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?company_id=4021","request_id":"sandbox-00000017","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/companies/4021/me","request_id":"sandbox-00000018","status":200,"system":"procore"}],"idempotency_key":"c88b50225ebd4f22a2d89fbdc2063965","lease_until":"2026-12-06T17:27:19.200629Z","owner":"ana@summit.example on vm (pid 29200)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}','6265e88510d4e2d477c569006d6e8f75ec503d818b63b86d816a33372240dd9b','c9e1709d9ce47cea10fc36562a4ccae20bdd7ea764b10ddb20f989875016f019');
INSERT INTO "audit_entry" VALUES(6,'2026-12-06T17:26:19.216665Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','unlink','DeletedInERP','Unlinked','succeeded','Successfully Unlinked',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000020","status":200,"system":"procore"},{"method":"PATCH","path":"/rest/v1.0/companies/4021/external_data/sync","request_id":"sandbox-00000021","status":200,"system":"procore"},{"method":"GET","path":"/v3/company/9130357/bill/183","request_id":"sandbox-00000019","status":400,"system":"qbo"}],"erp_bill":{"id":"183","status":"gone"},"idempotency_key":"c88b50225ebd4f22a2d89fbdc2063965","lease_until":"2026-12-06T17:27:19.200629Z","origin_id":"183","owner":"ana@summit.example on vm (pid 29200)","permissions":{"can_push_to_accounting":true,"commitments":"Admin","erp_integrations":"Admin"},"required":{"can_push_to_accounting":true,"commitments":["Admin"],"erp_integrations":["Standard","Admin"]}}','c9e1709d9ce47cea10fc36562a4ccae20bdd7ea764b10ddb20f989875016f019','c630ef5cc8c92bc66a712846cf88c1d3096b65cb86c271d7e02da3c78dbe33f4');
INSERT INTO "audit_entry" VALUES(7,'2026-12-06T17:26:20.079794Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','delete-in-procore','Unlinked','Unlinked','in_flight','delete-in-procore in flight.',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000022","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000023","status":200,"system":"procore"}],"idempotency_key":"49ea03b8a0274403aee67a8c5d8d70cb","lease_until":"2026-12-06T17:27:20.076888Z","owner":"ana@summit.example on vm (pid 29201)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}','c630ef5cc8c92bc66a712846cf88c1d3096b65cb86c271d7e02da3c78dbe33f4','99f57609e41eb5c31bb9cb63fd5007939b5971d8836649671dbdf438330c3c77');
INSERT INTO "audit_entry" VALUES(8,'2026-12-06T17:26:20.096049Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','delete-in-procore','Unlinked','DeletedInProcore','succeeded','Deleted invoice 9001 in Procore.',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000024","status":200,"system":"procore"},{"method":"DELETE","path":"/rest/v1.1/requisitions/9001?project_id=101","request_id":"sandbox-00000025","status":200,"system":"procore"}],"idempotency_key":"49ea03b8a0274403aee67a8c5d8d70cb","lease_until":"2026-12-06T17:27:20.076888Z","owner":"ana@summit.example on vm (pid 29201)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}','99f57609e41eb5c31bb9cb63fd5007939b5971d8836649671dbdf438330c3c77','458aedd87d15bd78ec04a583d103d88270c3d1ffa7e9ad0af56437b1843c0d46');
INSERT INTO "audit_entry" VALUES(9,'2026-12-06T17:26:21.217142Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','reenter','DeletedInProcore','DeletedInProcore','in_flight','reenter in flight.',NULL,'{"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000026","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000027","status":200,"system":"procore"}],"idempotency_key":"210a65f72a2c4b26b278414bfc3c86c5","lease_until":"2026-12-06T17:27:21.212233Z","owner":"ana@summit.example on vm (pid 29202)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Standard","Admin"],"erp_integrations":[]}}','458aedd87d15bd78ec04a583d103d88270c3d1ffa7e9ad0af56437b1843c0d46','a3ce82093330b7eaaea7d2bfb6080ed1503e7a7ec0c5ab200e6acd6482d01a12');
INSERT INTO "audit_entry" VALUES(10,'2026-12-06T17:26:21.235533Z',1,'subcontractor-invoice',1,4021,101,9001,'183',7001,'ana@summit.example','Ana Alvarez','reenter','DeletedInProcore','Reentered','succeeded','Re-entered invoice 9001 as 9900000000 (INV-1001-C).',NULL,'{"after":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-03T09:00:04Z","deletable":true,"erp_status":null,"final":false,"id":9900000000,"invoice_number":"INV-1001-C","items":[{"description":"Structural steel, January 2026 progress","id":9950000000,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":6,"origin_data":null,"origin_id":null,"period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-03T09:00:04Z","vendor_name":"Ironclad Steel"},"before":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:00:00Z","deletable":true,"erp_status":"synced","final":false,"id":9001,"invoice_number":"INV-1001","items":[{"description":"Structural steel, January 2026 progress","id":900101,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":1,"origin_data":"QuickBooks Online bill 183","origin_id":"183","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-02T15:00:00Z","vendor_name":"Ironclad Steel"},"calls":[{"method":"GET","path":"/rest/v1.1/requisitions?project_id=101&per_page=100&filters[commitment_id]=5501&filters[invoice_number]=INV-1001-C&page=1","request_id":"sandbox-00000028","status":200,"system":"procore"},{"method":"POST","path":"/rest/v1.1/requisitions","request_id":"sandbox-00000029","status":201,"system":"procore"}],"corrected":{"invoice_number":"INV-1001-C"},"idempotency_key":"210a65f72a2c4b26b278414bfc3c86c5","lease_until":"2026-12-06T17:27:21.212233Z","owner":"ana@summit.example on vm (pid 29202)","permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Standard","Admin"],"erp_integrations":[]}}','a3ce82093330b7eaaea7d2bfb6080ed1503e7a7ec0c5ab200e6acd6482d01a12','6d6c614935c146ff6884f44d16640d649d4812c35b244344dc0c47fcc9d8a9a1');
INSERT INTO "audit_entry" VALUES(11,'2026-12-06T17:26:22.355416Z',2,'subcontractor-invoice',1,4021,101,9002,'184',7001,'ana@summit.example','Ana Alvarez','start',NULL,'Exported','succeeded','Started correction of invoice 9002 (INV-1002).','Open correction left by the release','{"before":{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:01:00Z","deletable":true,"erp_status":"synced","final":false,"id":9002,"invoice_number":"INV-1002","items":[{"description":"Structural steel, January 2026 progress","id":900201,"materials_presently_stored":"0.00","work_completed_this_period":"8400.00"}],"number":2,"origin_data":"QuickBooks Online bill 184","origin_id":"184","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"8400.00","updated_at":"2026-02-02T15:01:00Z","vendor_name":"Ironclad Steel"},"calls":[{"method":"GET","path":"/rest/v1.0/me","request_id":"sandbox-00000030","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.0/settings/permissions?project_id=101","request_id":"sandbox-00000031","status":200,"system":"procore"},{"method":"GET","path":"/rest/v1.1/requisitions/9002?project_id=101","request_id":"sandbox-00000032","status":200,"system":"procore"}],"permissions":{"commitments":"Admin"},"required":{"can_push_to_accounting":false,"commitments":["Admin"],"erp_integrations":[]}}','6d6c614935c146ff6884f44d16640d649d4812c35b244344dc0c47fcc9d8a9a1','511122cd6f10bdfe272d7791c7f7e866dbc3b2643202045c89356945493c7333');
CREATE TABLE audit_head (
	id INTEGER NOT NULL, 
	log_id VARCHAR(64) NOT NULL, 
	seq BIGINT NOT NULL, 
	hash VARCHAR(64) NOT NULL, canonical_from BIGINT DEFAULT '1' NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "audit_head" VALUES(1,'80231c67d7e47489f02795f9a7f1fb6b',11,'511122cd6f10bdfe272d7791c7f7e866dbc3b2643202045c89356945493c7333',1);
CREATE TABLE workflow (
	id INTEGER NOT NULL, 
	workflow VARCHAR(100) NOT NULL, 
	version INTEGER NOT NULL, 
	state VARCHAR(50) NOT NULL, 
	revision INTEGER NOT NULL, 
	company_id BIGINT NOT NULL, 
	project_id BIGINT NOT NULL, 
	invoice_id BIGINT NOT NULL, 
	open_invoice_id BIGINT, 
	erp VARCHAR(50) NOT NULL, 
	erp_key VARCHAR(20) NOT NULL, 
	erp_bill_id VARCHAR(100), 
	reason TEXT, 
	snapshot TEXT NOT NULL, 
	new_invoice_id BIGINT, 
	"after" TEXT, 
	in_flight_step VARCHAR(50), 
	in_flight_to VARCHAR(50), 
	in_flight_key VARCHAR(64), 
	in_flight_since VARCHAR(32), 
	in_flight_data TEXT, 
	created_at VARCHAR(32) NOT NULL, 
	updated_at VARCHAR(32) NOT NULL, in_flight_owner VARCHAR(255), in_flight_host VARCHAR(255), in_flight_pid INTEGER, in_flight_lease_until VARCHAR(32), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_workflow_open_invoice UNIQUE (company_id, open_invoice_id)
);
INSERT INTO "workflow" VALUES(1,'subcontractor-invoice',1,'Reentered',9,4021,101,9001,NULL,'QuickBooks Online','qbo','183','Wrong invoice number','{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:00:00Z","deletable":true,"erp_status":"synced","final":false,"id":9001,"invoice_number":"INV-1001","items":[{"description":"Structural steel, January 2026 progress","id":900101,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":1,"origin_data":"QuickBooks Online bill 183","origin_id":"183","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-02T15:00:00Z","vendor_name":"Ironclad Steel"}',9900000000,'{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-03T09:00:04Z","deletable":true,"erp_status":null,"final":false,"id":9900000000,"invoice_number":"INV-1001-C","items":[{"description":"Structural steel, January 2026 progress","id":9950000000,"materials_presently_stored":"0.00","work_completed_this_period":"12500.00"}],"number":6,"origin_data":null,"origin_id":null,"period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"12500.00","updated_at":"2026-02-03T09:00:04Z","vendor_name":"Ironclad Steel"}',NULL,NULL,NULL,NULL,NULL,'2026-12-06T17:26:16.234438Z','2026-12-06T17:26:21.233764Z',NULL,NULL,NULL,NULL);
INSERT INTO "workflow" VALUES(2,'subcontractor-invoice',1,'Exported',1,4021,101,9002,9002,'QuickBooks Online','qbo','184','Open correction left by the release','{"billing_date":"2026-01-31","comment":null,"commitment_id":5501,"created_at":"2026-02-02T15:01:00Z","deletable":true,"erp_status":"synced","final":false,"id":9002,"invoice_number":"INV-1002","items":[{"description":"Structural steel, January 2026 progress","id":900201,"materials_presently_stored":"0.00","work_completed_this_period":"8400.00"}],"number":2,"origin_data":"QuickBooks Online bill 184","origin_id":"184","period_id":301,"project_id":101,"requisition_end":"2026-01-31","requisition_start":"2026-01-01","status":"approved","total_claimed_amount":"8400.00","updated_at":"2026-02-02T15:01:00Z","vendor_name":"Ironclad Steel"}',NULL,NULL,NULL,NULL,NULL,NULL,NULL,'2026-12-06T17:26:22.350332Z','2026-12-06T17:26:22.350332Z',NULL,NULL,NULL,NULL);
CREATE INDEX ix_workflow_state ON workflow (state);
CREATE INDEX ix_workflow_project ON workflow (project_id);
CREATE INDEX ix_workflow_invoice ON workflow (invoice_id);
CREATE INDEX ix_audit_invoice_seq ON audit_entry (invoice_id, seq);
CREATE INDEX ix_audit_project_seq ON audit_entry (project_id, seq);
CREATE INDEX ix_audit_actor_seq ON audit_entry (actor_login, seq);
CREATE INDEX ix_audit_workflow_seq ON audit_entry (workflow_id, seq);
CREATE INDEX ix_audit_recorded_at ON audit_entry (recorded_at);
CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END;
CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END;
CREATE TRIGGER audit_entry_no_replace BEFORE INSERT ON audit_entry
       WHEN EXISTS (SELECT 1 FROM audit_entry WHERE seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END;
CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
       WHEN NEW.id IS NOT OLD.id OR NEW.log_id IS NOT OLD.log_id
         OR NEW.canonical_from IS NOT OLD.canonical_from OR NEW.seq < OLD.seq
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
COMMIT;
