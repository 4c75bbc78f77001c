/** The SNI choice: which certificate a server name gets. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pickByName, sniTable } from '../../../../src/listener/tls/sni.ts';

test('sni: exact before wildcard, the longest wildcard first, case and a trailing dot ignored', () => {
  const table = sniTable([
    { server_names: ['*.example.org'], value: 'wide' },
    { server_names: ['*.deep.example.org'], value: 'narrow' },
    { server_names: ['api.deep.example.org'], value: 'exact' },
  ]);
  assert.is(pickByName(table, 'api.deep.example.org'), 'exact');
  assert.is(pickByName(table, 'API.deep.example.org.'), 'exact');
  assert.is(pickByName(table, 'x.deep.example.org'), 'narrow');
  assert.is(pickByName(table, 'x.y.deep.example.org'), 'narrow');
  assert.is(pickByName(table, 'deep.example.org'), 'wide');
  assert.is(pickByName(table, 'example.org'), undefined);
  assert.is(pickByName(table, 'notexample.org'), undefined);
});

test.run();
