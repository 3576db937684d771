// wechatpay-axios-plugin, set up as its README says, against the WeChat Pay sandbox.
//
// Usage: node interop.js BASE_URL MERCHANT_JSON
// Prints one JSON summary on stdout; exits 1 when a step fails (the summary then has `error`).
// The SDK signs every request and verifies every 2xx answer itself (its `certs` by serial);
// it sends no Wechatpay-Serial, so a switching merchant answers with the platform certificate,
// which the README adds to `certs` beside the public key.
'use strict';

const { readFileSync } = require('fs');
const path = require('path');
const { Wechatpay } = require('wechatpay-axios-plugin');

const [baseURL, merchantJson] = process.argv.slice(2);
const merchant = JSON.parse(readFileSync(merchantJson, 'utf8'));
const file = (name) => `file://${path.resolve(path.dirname(merchantJson), name)}`;

const certs = { [merchant.public_key_id]: file(merchant.platform_public_key) };
if (merchant.platform_certificate) {
  certs[merchant.platform_certificate_serial] = file(merchant.platform_certificate);
}
const wxpay = new Wechatpay({
  mchid: merchant.mchid,
  serial: merchant.merchant_serial,
  privateKey: file(merchant.merchant_private_key),
  certs,
  baseURL: `${baseURL}/`,
});

const { mchid, appid } = merchant;
const NOTIFY_URL = 'https://pos.example.com/wechatpay/notify';
const summary = { certs: Object.keys(certs), signers: [] };
let step = 'start';

async function call(name, request) {
  step = name;
  const answer = await request();
  summary.signers.push(answer.headers['wechatpay-serial']);
  return answer;
}

async function sandbox(pathname, body) {
  const answer = await fetch(`${baseURL}${pathname}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return answer.json();
}

const byOutTradeNo = wxpay.v3.pay.transactions.outTradeNo.$out_trade_no$;

async function nativeOrder() {
  const out_trade_no = 'NODE0000001';
  const created = await call('native', () => wxpay.v3.pay.transactions.native.post({
    mchid,
    out_trade_no,
    appid,
    description: '好邻居便利店 Node SDK',
    notify_url: NOTIFY_URL,
    amount: { total: 1234, currency: 'CNY' },
  }));
  const query = () => byOutTradeNo.get({ params: { mchid }, out_trade_no });
  const before = await call('native query', query);
  const closed = await call('close', () => byOutTradeNo.close.post({ mchid }, { out_trade_no }));
  const after = await call('native query after close', query);
  return {
    out_trade_no,
    code_url: created.data.code_url,
    state: before.data.trade_state,
    close_status: closed.status,
    state_after_close: after.data.trade_state,
  };
}

async function codepayAndRefund() {
  const out_trade_no = 'NODE0000002';
  step = 'payment code';
  const { auth_code } = await sandbox('/sandbox/payment-codes', { scenario: 'paid' });
  const paid = await call('codepay', () => wxpay.v3.pay.transactions.codepay.post({
    appid,
    mchid,
    description: '好邻居便利店 Node SDK',
    out_trade_no,
    payer: { auth_code },
    amount: { total: 2500, currency: 'CNY' },
    scene_info: { device_id: 'NODE01', store_info: { out_id: 'SH-0001' } },
  }));
  const { transaction_id } = paid.data;
  const byId = await call('query by transaction_id', () => wxpay.v3.pay.transactions.id
    ._transaction_id_.get({ params: { mchid }, transaction_id }));
  // the README's refund, with its optional funds_account and amount.from
  const out_refund_no = 'NODER0000002';
  const refund = await call('refund', () => wxpay.v3.refund.domestic.refunds.post({
    transaction_id,
    out_refund_no,
    reason: '退货 return',
    notify_url: NOTIFY_URL,
    funds_account: 'AVAILABLE',
    amount: {
      refund: 800, from: [{ account: 'AVAILABLE', amount: 800 }], total: 2500, currency: 'CNY',
    },
    goods_detail: [{
      merchant_goods_id: '6901234567890',
      goods_name: '矿泉水',
      unit_price: 400,
      refund_amount: 800,
      refund_quantity: 2,
    }],
  }));
  const refundQuery = await call('refund query', () => wxpay.v3.refund.domestic.refunds
    ._out_refund_no_.get({ out_refund_no }));
  return {
    out_trade_no,
    state: paid.data.trade_state,
    transaction_id,
    state_by_id: byId.data.trade_state,
    out_refund_no,
    refund_status: refund.data.status,
    refund_from: refund.data.amount.from,
    refund_query_status: refundQuery.data.status,
    refund_id: refundQuery.data.refund_id,
  };
}

async function tampered() {
  // a one-shot fault changes the body after signing: the SDK's verifier must refuse it
  step = 'tampered';
  await sandbox('/sandbox/faults/next', {
    method: 'GET', path: '/v3/pay/transactions/out-trade-no/', tamper_body: true,
  });
  try {
    await byOutTradeNo.get({ params: { mchid }, out_trade_no: 'NODE0000001' });
    return 'accepted';
  } catch (error) {
    return error.code;
  }
}

(async () => {
  try {
    summary.native = await nativeOrder();
    summary.codepay = await codepayAndRefund();
    summary.tampered = await tampered();
  } catch (error) {
    const answer = error.response || {};
    const { status, data } = answer;
    summary.error = { step, code: error.code, message: error.message, status, data };
    process.exitCode = 1;
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
})();
