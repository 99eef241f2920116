-- The masking tests' table of seeded PII (email, phone, card, SSN), for
-- psql -f: users 1 and 2.
create table users (id int primary key, email text, phone text, card text, ssn text, name text);
insert into users values
  (1, 'alice.pii@example.com', '+14155552671', '4111111111111111', '123-45-6789', 'Alice'),
  (2, 'carol.pii@example.net', '+442071838750', '5500005555555559', '078-05-1120', 'Carol');
