/** The CDK app entry (cdk.json runs it with tsx): `npx cdk synth -c stage=prod`. */
import { buildKeypoolApp } from './keypool-app.js';

buildKeypoolApp().app.synth();
