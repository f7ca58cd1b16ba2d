#!/usr/bin/env bash
# Walks the booking flow with curl against running services (by default the
# embedded mode started with `cargo run`): owner signs up and lists a
# property, traveler books it, owner approves, traveler sees ACCEPTED and a
# notification. Needs curl and jq.
set -euo pipefail
T=${TRAVELER_URL:-http://127.0.0.1:5005}
O=${OWNER_URL:-http://127.0.0.1:5002}
run=$RANDOM$RANDOM
json() { curl -sS -H 'content-type: application/json' "$@"; }

owner=$(json -X POST "$O/api/owners/signup" -d "{\"name\":\"Olga\",\"email\":\"olga$run@example.com\",\"password\":\"owner-pass-1\"}" | jq -r .token)
property=$(json -X POST "$O/api/owners/properties" -H "authorization: Bearer $owner" \
  -d '{"name":"Sea cottage","city":"Lisbon","country":"PT","price_per_night_cents":12000,"cleaning_fee_cents":3000,"max_guests":4}' | jq -r .property.id)
echo "property  $property"

traveler=$(json -X POST "$T/api/travelers/signup" -d "{\"name\":\"Tom\",\"email\":\"tom$run@example.com\",\"password\":\"traveler-pass-1\"}" | jq -r .token)
for _ in $(seq 50); do
  found=$(curl -sS "$T/api/travelers/properties/$property" -H "authorization: Bearer $traveler" | jq -r '.property.id // empty')
  [ -n "$found" ] && break; sleep 0.1
done
echo "catalog   $(curl -sS "$T/api/travelers/properties?city=lisbon" -H "authorization: Bearer $traveler" | jq -c '[.properties[].name]')"

check_in=$(date -u -d '+30 days' +%F); check_out=$(date -u -d '+33 days' +%F)
booking=$(json -X POST "$T/api/travelers/bookings" -H "authorization: Bearer $traveler" -H "idempotency-key: demo-$run" \
  -d "{\"property_id\":\"$property\",\"check_in\":\"$check_in\",\"check_out\":\"$check_out\",\"guests\":2}")
echo "booking   $(echo "$booking" | jq -c '.booking | {id, nights, total_price_cents, status}')"
id=$(echo "$booking" | jq -r .booking.id)

for _ in $(seq 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$O/api/owners/bookings/$id/approve" -H "authorization: Bearer $owner")
  [ "$code" = 200 ] && break; sleep 0.1
done
echo "approve   HTTP $code"
for _ in $(seq 50); do
  status=$(curl -sS "$T/api/travelers/bookings/$id" -H "authorization: Bearer $traveler" | jq -r .booking.status)
  [ "$status" = ACCEPTED ] && break; sleep 0.1
done
echo "traveler  sees $status"
echo "notices   $(curl -sS "$T/api/travelers/notifications" -H "authorization: Bearer $traveler" | jq -c '[.notifications[] | {status, booking_id}]')"
[ "$status" = ACCEPTED ]
