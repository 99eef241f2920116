-- sample.sql — the demo's sample shop (tests/demo/run.sh): customers with PII
-- (emails, phones, card numbers) and their orders. Made-up data only.
create table customers (
  id          int primary key,
  name        text not null,
  email       text not null,
  phone       text,
  card_number text,
  city        text
);
insert into customers values
  (1, 'Ada Lovelace',   'ada@shop.example',    '+44 20 7946 0018', '4111 1111 1111 1111', 'London'),
  (2, 'Grace Hopper',   'grace@shop.example',  '(415) 555-2671',   '5555 5555 5555 4444', 'New York'),
  (3, 'Alan Turing',    'alan@shop.example',   '+44 161 496 0753', '3782 822463 10005',   'Manchester'),
  (4, 'Edsger Dijkstra','edsger@shop.example', '+31 20 794 6021',  '6011 1111 1111 1117', 'Amsterdam');

create table orders (
  id          int primary key,
  customer_id int not null references customers (id),
  item        text not null,
  amount      numeric(10, 2) not null,
  status      text not null default 'new'
);
insert into orders values
  (101, 1, 'analytical engine manual', 42.00, 'new'),
  (102, 2, 'compiler handbook',        35.50, 'new'),
  (103, 3, 'enigma rotor',             120.00, 'shipped'),
  (104, 4, 'semaphore kit',            18.25, 'new');
